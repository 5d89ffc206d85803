// The pending page: polls the checkout's status (the URL, with its signed
// token, is in the page's data attribute) and reloads the return URL once
// the payment is settled; the gateway then redirects to the shop.
(function () {
  "use strict";
  var el = document.getElementById("pending");
  if (!el) { return; }
  var url = el.getAttribute("data-status-url");
  var delay = 1000;

  function poll() {
    fetch(url, { credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && (s.status === "paid" || s.status === "failed")) {
          window.location.reload();
          return;
        }
        delay = Math.min(delay * 1.5, 5000);
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, delay);
})();
