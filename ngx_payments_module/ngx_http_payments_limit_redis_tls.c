
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis over TLS: nginx's own OpenSSL
 * layer on the link's connection, as nginx's upstream does it.  Once the
 * connect is done, ngx_ssl_create_connection() and ngx_ssl_handshake()
 * (its steps on the connection's events); once the handshake is done,
 * Redis's certificate is checked (its chain against tls_ca_file=, its
 * name against tls_name=) and the connection's handlers become the
 * protocol's (_limit_redis_proto.c), whose c->recv and c->send are now
 * nginx's SSL ones.  Until then nothing of the protocol is written: the
 * handshake's commands (AUTH, SCRIPT LOAD) wait in the link's buffer.  A
 * handshake or a certificate that fails drops the link (link->drop) as
 * any outage, with one warn line naming why, never a secret; the link's
 * deadline (a second for the connect and both handshakes) still holds.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"
#include "ngx_http_payments_limit_redis_int.h"

#if (NGX_SSL)

#include <openssl/x509v3.h>


static void ngx_http_payments_limit_redis_tls_done(ngx_connection_t *c);


/*
 * The connection's read and write handler until the TLS handshake starts:
 * the connect ended (or a check posted the write event meanwhile).
 */

void
ngx_http_payments_limit_redis_tls_connected(ngx_event_t *ev)
{
    ngx_int_t                              rc;
    ngx_connection_t                      *c = ev->data;
    ngx_http_payments_limit_link_t        *link = c->data;
    ngx_http_payments_limit_redis_conf_t  *conf = link->conf;

    if (link->connected || (ev->write && !ev->ready)) {
        return;
    }

    if (ngx_http_payments_limit_redis_test_connect(link) != NGX_OK) {
        return;     /* dropped */
    }

    link->handshaking = 1;

    if (ngx_ssl_create_connection(conf->ssl, c, NGX_SSL_CLIENT) != NGX_OK) {
        link->drop(link, "is unreachable", "no memory for TLS");
        return;
    }

    /* SNI, for a name (RFC 6066: never an address) */
    if (conf->tls_name.len && !conf->tls_name_ip
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) conf->tls_name.data)
           == 0)
    {
        link->drop(link, "is unreachable", "SSL_set_tlsext_host_name() "
                   "failed");
        return;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = ngx_http_payments_limit_redis_tls_done;
        return;
    }

    ngx_http_payments_limit_redis_tls_done(c);
}


/* Redis's certificate is for tls_name=: a host name, or an address */

static ngx_int_t
ngx_http_payments_limit_redis_tls_name(ngx_connection_t *c,
    ngx_http_payments_limit_redis_conf_t *conf)
{
    int    rc;
    X509  *cert;

    if (!conf->tls_name_ip) {
        return ngx_ssl_check_host(c, &conf->tls_name);
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    rc = X509_check_ip_asc(cert, (const char *) conf->tls_name.data, 0);
    X509_free(cert);

    return rc == 1 ? NGX_OK : NGX_ERROR;
}


/* the handshake ended: verified, the link speaks the protocol over it */

static void
ngx_http_payments_limit_redis_tls_done(ngx_connection_t *c)
{
    long                                   rc;
    ngx_http_payments_limit_link_t        *link = c->data;
    ngx_http_payments_limit_redis_conf_t  *conf = link->conf;

    if (!c->ssl->handshaked) {
        link->drop(link, "did not complete the TLS handshake", NULL);
        return;
    }

    if (conf->tls_verify) {
        rc = SSL_get_verify_result(c->ssl->connection);

        if (rc != X509_V_OK) {
            link->drop(link, "presented a TLS certificate that does not "
                       "verify against tls_ca_file=",
                       X509_verify_cert_error_string(rc));
            return;
        }

        if (ngx_http_payments_limit_redis_tls_name(c, conf) != NGX_OK) {
            link->drop(link, "presented a TLS certificate for another name "
                       "than", (const char *) conf->tls_name.data);
            return;
        }
    }

    link->handshaking = 0;

    c->read->handler = ngx_http_payments_limit_redis_read;
    c->write->handler = ngx_http_payments_limit_redis_write;

    /* AUTH and SCRIPT LOAD wait in the buffer */
    ngx_post_event(c->write, &ngx_posted_events);
}

#endif
