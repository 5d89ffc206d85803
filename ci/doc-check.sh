#!/usr/bin/env bash
# Keeps the docs true to the code and inside the repository (`make
# doc-check`, a suite of `make test`):
#
#   - every directive a module registers (its ngx_command_t table in
#     ngx_payments_module/*.c) has its own entry, "### name", in that
#     module's reference page (doc/ngx_http_payments_limit_module.md for the
#     _limit files, doc/ngx_http_payments_module.md for the others), with a
#     Syntax: line naming it, a Default: line and a Context: line equal to
#     the contexts its NGX_HTTP_*_CONF flags allow; a page entry for a
#     directive the code does not register fails too; and the page's
#     contents (the list above its first "##" heading) link to the entry;
#   - every variable the modules add ($payments_*) is listed under a
#     "variables" heading of a reference page;
#   - every SQL function the query strings of ngx_payments_module/*.c and
#     bin/*.c (payments-reconcile) call, a pay_* or recon_* name or one
#     with a file sql/functions/<name>.sql, has an entry in section 1 of
#     doc/CONTRACTS.md: a line starting "name(" whose parameter list has as
#     many parameters as the call passes; and every such entry names a
#     function of sql/functions/<name>.sql with those parameters' names, in
#     that order, and what it RETURNS (one of its forms when it has
#     several);
#   - README.md is under 400 lines;
#   - every ```nginx block of README.md and doc/*.md says what it is
#     (<!-- nginx-check: ... -->, read by ci/doc-nginx-check.sh);
#   - README.md, CONTRIBUTING.md, bench/RESULTS.md and doc/*.md link only
#     to files of the repository that exist (and to headings that exist in
#     them): no URL, no path leading out of the tree.
#
# Prints one line per failure and, last, "docs: N passed, N failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

exec perl -e '
use strict;
use warnings;

my ($passed, $failed) = (0, 0);

sub ok   { $passed++; }
sub fail { $failed++; print "FAIL: $_[0]\n"; }

sub slurp {
    my ($f) = @_;
    open(my $fh, "<", $f) or return undef;
    local $/;
    my $t = <$fh>;
    close $fh;
    return $t;
}

# --- the code: directives, their contexts, variables ------------------------

my (%directive, %variable);

for my $c (sort glob("ngx_payments_module/*.c")) {
    my @l = split /\n/, slurp($c);
    my $page = $c =~ /_limit/ ? "doc/ngx_http_payments_limit_module.md"
                              : "doc/ngx_http_payments_module.md";

    for (my $i = 0; $i < @l; $i++) {
        if ($l[$i] =~ /^\s*\{\s*ngx_string\("(payments\w*)"\),\s*$/) {
            my ($name, $flags) = ($1, $l[$i + 1] // "");
            my @ctx;
            push @ctx, "http" if $flags =~ /NGX_HTTP_MAIN_CONF/;
            push @ctx, "server" if $flags =~ /NGX_HTTP_SRV_CONF/;
            push @ctx, "location" if $flags =~ /NGX_HTTP_LOC_CONF\b/;
            $directive{$name} = { page => $page, ctx => join(", ", @ctx) };

        } elsif ($l[$i] =~ /ngx_string\("(payments\w*)"\)/) {
            $variable{$1} = 1;
        }
    }
}

fail("no directive found in ngx_payments_module/*.c") unless %directive;

# --- the reference pages ---------------------------------------------------------

my (%entry, %listed_var, %contents);

for my $page (sort glob("doc/ngx_http_*_module.md")) {
    my $text = slurp($page);
    my ($name, $in_vars, $past_contents);

    for my $line (split /\n/, $text) {
        $past_contents = 1 if $line =~ /^##\s/;
        if (!$past_contents) {
            $contents{$page}{$1} = 1
                while $line =~ /\[(payments\w*)\]\(#\1\)/g;
        }

        if ($line =~ /^#{1,3}\s+(.*)$/) {
            my $h = $1;
            $in_vars = $h =~ /variables/i;
            undef $name;
            if ($line =~ /^###\s+(payments\w*)\s*$/) {
                $name = $1;
                if ($entry{$name}) {
                    fail("$page: \"$name\" has two entries");
                }
                $entry{$name} = { page => $page };
            }
            next;
        }

        if ($in_vars) {
            $listed_var{$1} = 1 while $line =~ /\$(payments\w*)/g;
        }

        next unless defined $name;

        my $e = $entry{$name};
        if ($line =~ /^\s*Syntax:\s+(\S+)/) {
            my $w = $1;
            $w =~ s/[`;]//g;
            $e->{syntax} = 1 if $w eq $name;
        } elsif ($line =~ /^\s*Default:\s+\S/) {
            $e->{default} = 1;
        } elsif ($line =~ /^\s*Context:\s+(.+?)\s*$/) {
            (my $c = $1) =~ s/`//g;
            $e->{context} = $c;
        }
    }
}

for my $name (sort keys %directive) {
    my $d = $directive{$name};
    my $e = $entry{$name};
    my $what = "directive $name ($d->{page})";

    if (!$e) {
        fail("$what: no \"### $name\" entry");
    } elsif ($e->{page} ne $d->{page}) {
        fail("$what: its entry is in $e->{page}");
    } elsif (!$e->{syntax}) {
        fail("$what: no \"Syntax: $name ...\" line");
    } elsif (!$e->{default}) {
        fail("$what: no \"Default:\" line");
    } elsif (!defined $e->{context}) {
        fail("$what: no \"Context:\" line");
    } elsif ($e->{context} ne $d->{ctx}) {
        fail("$what: Context: $e->{context}, the code allows $d->{ctx}");
    } elsif (!$contents{$e->{page}}{$name}) {
        fail("$what: not in the contents of $e->{page} "
             . "([$name](#$name))");
    } else {
        ok();
    }
}

for my $name (sort keys %entry) {
    fail("$entry{$name}{page}: entry \"$name\" is not a directive of the code")
        unless $directive{$name};
}

for my $v (sort keys %variable) {
    if ($listed_var{$v}) {
        ok();
    } else {
        fail("variable \$$v: not listed under a reference page\x27s "
             . "\"variables\" heading");
    }
}

# --- doc/CONTRACTS.md section 1: the SQL functions the glue calls ---------

# a parameter list (the text between the parentheses): its parameters,
# split at the commas outside parentheses and brackets
sub params {
    my ($list) = @_;
    $list =~ s{/\*.*?\*/}{}gs;
    $list =~ s/--[^\n]*//g;
    return () if $list =~ /^\s*$/;
    my (@p, $depth, $cur);
    ($depth, $cur) = (0, "");
    for my $ch (split //, $list) {
        $depth++ if $ch eq "(" || $ch eq "[";
        $depth-- if $ch eq ")" || $ch eq "]";
        if ($ch eq "," && $depth == 0) {
            push @p, $cur;
            $cur = "";
        } else {
            $cur .= $ch;
        }
    }
    push @p, $cur;
    s/^\s+|\s+$//g for @p;
    return @p;
}

# the text after an opening parenthesis up to its matching one, or undef
sub inside {
    my ($text) = @_;
    my $depth = 1;
    for (my $i = 0; $i < length $text; $i++) {
        my $ch = substr($text, $i, 1);
        $depth++ if $ch eq "(";
        $depth-- if $ch eq ")";
        return substr($text, 0, $i) if $depth == 0;
    }
    return undef;
}

# a signature: its parameter list (the text after "name("), read as the
# parameter names (OUT parameters left out) and what it RETURNS, written
# alike ("TABLE(a integer, b text)", "integer"), or "" when it says none
sub signature {
    my ($text) = @_;
    my $list = inside($text) // return undef;
    my $rest = substr($text, length($list) + 1);
    ($rest) = $rest =~ /^([^\n]*(?:\n[ \t]+[^\n]*)*)/;
    $rest =~ s{/\*.*?\*/}{}gs;
    $rest =~ s/--[^\n]*//g;
    my $ret = "";
    if ($rest =~ /^\s*RETURNS\s+(TABLE\s*\([^)]*\)|SETOF\s+\S+|[\w\[\]]+)/i) {
        $ret = lc $1;
        $ret =~ s/\s+/ /g;
        $ret =~ s/\s*([(),])\s*/$1/g;
        $ret =~ s/,/, /g;
        $ret =~ s/\bint\b/integer/g;
        $ret =~ s/\bbool\b/boolean/g;
        $ret =~ s/^table/TABLE/;
        $ret =~ s/^setof/SETOF/;
    }
    return { params => [ map { (split /\s+/)[0] // "" }
                         grep { !/^OUT\s/i } params($list) ],
             returns => $ret };
}

# the functions of sql/functions/<name>.sql: the signature of each form
sub sql_forms {
    my ($name) = @_;
    my $sql = slurp("sql/functions/$name.sql") // return undef;
    my @forms;
    while ($sql =~ /CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?
                    \Q$name\E\s*\(/gix) {
        my $f = signature(substr($sql, pos($sql))) // next;
        push @forms, $f;
    }
    return \@forms;
}

sub show {
    my ($name, $f) = @_;
    return "$name(" . join(", ", @{ $f->{params} }) . ")"
           . ($f->{returns} ne "" ? " RETURNS $f->{returns}" : "");
}

# what the code calls: name => { number of arguments => "file" }
my %call;

for my $c (sort(glob("ngx_payments_module/*.c"), glob("bin/*.c"))) {
    my $text = slurp($c);
    $text =~ s{/\*.*?\*/}{ }gs;
    while ($text =~ /((?:"(?:[^"\\\n]|\\.)*"\s*)+)/g) {
        my $q = join "", $1 =~ /"((?:[^"\\\n]|\\.)*)"/g;
        next unless $q =~ /\bSELECT\b/;
        while ($q =~ /\b([a-z_][a-z0-9_]*)\s*\(/gi) {
            my $name = $1;
            next unless $name =~ /^(?:pay|recon)_/
                        || -f "sql/functions/$name.sql";
            my $args = inside(substr($q, pos($q)));
            my $n = -1;
            if (defined $args) {
                my @a = params($args);
                $n = @a;
            }
            $call{$name}{$n} //= $c;
        }
    }
}

fail("no SQL function call found in ngx_payments_module/*.c") unless %call;

my $contracts = slurp("doc/CONTRACTS.md") // "";
my ($section) = $contracts =~ /^##\s+1\.[^\n]*\n(.*?)(?=^##\s|\z)/ms;
$section //= "";
fail("doc/CONTRACTS.md: no section \"## 1.\"") if $section eq "";

# the entries of the section: name => [ signature, ... ]
my %sqlentry;
while ($section =~ /^([a-z_][a-z0-9_]*)\(/mg) {
    my $name = $1;
    my $e = signature(substr($section, pos($section)));
    if (!defined $e) {
        fail("doc/CONTRACTS.md: entry $name( has no closing parenthesis");
        next;
    }
    push @{ $sqlentry{$name} }, $e;
}

for my $name (sort keys %call) {
    for my $n (sort { $a <=> $b } keys %{ $call{$name} }) {
        my $what = "SQL function $name ($call{$name}{$n} passes $n "
                   . ($n == 1 ? "argument" : "arguments") . ")";
        if (!$sqlentry{$name}) {
            fail("$what: no entry \"$name(\" in doc/CONTRACTS.md section 1");
        } elsif (!grep { @{ $_->{params} } == $n } @{ $sqlentry{$name} }) {
            fail("$what: its entry in doc/CONTRACTS.md section 1 has "
                 . join(" or ", map { scalar @{ $_->{params} } }
                                @{ $sqlentry{$name} })
                 . " parameter(s)");
        } else {
            ok();
        }
    }
}

for my $name (sort keys %sqlentry) {
    my $forms = sql_forms($name);
    for my $e (@{ $sqlentry{$name} }) {
        my $sig = show($name, $e);
        if (!$forms) {
            fail("doc/CONTRACTS.md: entry $sig: no sql/functions/$name.sql");
        } elsif (!grep { "@{ $_->{params} }" eq "@{ $e->{params} }"
                         && $_->{returns} eq $e->{returns} } @$forms) {
            fail("doc/CONTRACTS.md: entry $sig: sql/functions/$name.sql has "
                 . join(" or ", map { show($name, $_) } @$forms));
        } else {
            ok();
        }
    }
}

# --- README.md: a front door --------------------------------------------------

my $readme = slurp("README.md") // "";
my $lines = () = $readme =~ /\n/g;
if ($lines < 400) {
    ok();
} else {
    fail("README.md has $lines lines: 400 or more");
}

# --- nginx blocks ------------------------------------------------------------------
# Every ```nginx block of README.md and doc/*.md says what it is, so that
# ci/doc-nginx-check.sh (run by the e2e suite) knows how to check it: the
# comment <!-- nginx-check: main|http|server|location|skip REASON --> on
# the line above its fence, or a whole nginx.conf ("http {" or
# "load_module" in it).  Here at once, not minutes later in e2e.

for my $doc (grep { -f } ("README.md", sort glob("doc/*.md"))) {
    my @l = split /\n/, slurp($doc);
    for (my $i = 0; $i < @l; $i++) {
        next unless $l[$i] =~ /^```nginx\s*$/;
        my $tag = $i > 0 ? $l[$i - 1] : "";
        my ($j, $body) = ($i + 1, "");
        $body .= $l[$j++] . "\n" while $j < @l && $l[$j] !~ /^```/;
        if ($tag =~ /^<!-- nginx-check: (?:main|http|server|location|skip \S.*?) -->$/
            || $body =~ /^\s*(?:http\s*\{|load_module\b)/m)
        {
            ok();
        } else {
            fail("$doc:" . ($i + 1) . ": an nginx block without \"<!-- nginx-check:"
                 . " main|http|server|location|skip REASON -->\" on the line above"
                 . " (CONTRIBUTING.md, Docs)");
        }
        $i = $j;
    }
}

# --- links ------------------------------------------------------------------------

sub slugs {
    my ($text) = @_;
    my %s;
    $text =~ s/^```.*?^```//msg;
    for my $h ($text =~ /^#{1,6}\s+(.*?)\s*$/mg) {
        my $s = lc $h;
        $s =~ s/[^\w\- ]//g;
        $s =~ s/ /-/g;
        my $n = $s;
        my $i = 0;
        $n = $s . "-" . ++$i while $s{$n};
        $s{$n} = 1;
    }
    return \%s;
}

my @docs = grep { -f } ("README.md", "CONTRIBUTING.md", "bench/RESULTS.md",
                        sort glob("doc/*.md"));

for my $doc (@docs) {
    my $text = slurp($doc);
    (my $dir = $doc) =~ s{[^/]*$}{};

    $text =~ s/^```.*?^```//msg;       # fenced code
    $text =~ s/`[^`\n]*`//g;            # code spans

    my @targets;
    push @targets, $1 while $text =~ /\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g;
    push @targets, $1 while $text =~ /^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$/mg;
    push @targets, $1 while $text =~ /<((?:[a-z][a-z0-9+.-]*):[^>\s]+)>/gi;

    for my $t (@targets) {
        my $what = "$doc: link \"$t\"";

        if ($t =~ /^[a-z][a-z0-9+.-]*:/i || $t =~ m{^//}) {
            fail("$what leads out of the repository");
            next;
        }

        my ($path, $frag) = split /#/, $t, 2;
        my $file = $path eq "" ? $doc : $dir . $path;
        my @parts;
        my $out = 0;
        for my $p (split m{/}, $file) {
            next if $p eq "" || $p eq ".";
            if ($p eq "..") {
                if (@parts) { pop @parts; } else { $out = 1; }
            } else {
                push @parts, $p;
            }
        }
        $file = join("/", @parts);

        if ($path =~ m{^/} || $out) {
            fail("$what leads out of the repository");
        } elsif ($doc =~ m{^doc/} && $file !~ m{^doc/}) {
            # the package installs doc/ alone: name such a file as text
            fail("$what leaves doc/, which is all the package installs");
        } elsif (!-e $file) {
            fail("$what: no file $file");
        } elsif (defined $frag && $frag ne "" && $file =~ /\.md$/
                 && !slugs(slurp($file))->{$frag}) {
            fail("$what: no heading #$frag in $file");
        } else {
            ok();
        }
    }
}

print "docs: $passed passed, $failed failed\n";
exit($failed ? 1 : 0);
'
