#!/bin/sh
# uacme challenge hook for the test harness: http-01 tokens as files in $UACME_WEBROOT (served by pebble_env.Http01Responder).
# uacme calls: HOOK METHOD TYPE IDENT TOKEN AUTH ; exit 0 on "begin" accepts the challenge.
set -u
[ $# -eq 5 ] || { echo "usage: $0 method type ident token auth" >&2; exit 85; }
method=$1 type=$2 token=$4 auth=$5
[ "$type" = http-01 ] || exit 1          # decline dns-01 / tls-alpn-01
: "${UACME_WEBROOT:?UACME_WEBROOT not set}"
case "$token" in */*|.*|'') echo "$0: bad token" >&2; exit 1;; esac
case "$method" in
    begin)       printf '%s' "$auth" > "$UACME_WEBROOT/$token" ;;
    done|failed) rm -f "$UACME_WEBROOT/$token" ;;
    *)           echo "$0: invalid method $method" >&2; exit 1 ;;
esac
