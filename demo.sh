#!/bin/sh
# demo.sh - on a fresh Debian 12 machine: install dependencies, build acmed, start a local
# Pebble ACME CA on loopback, issue the certificates of config/demo.yaml, show them.
set -eu
cd "$(dirname "$0")"
ROOT=$(pwd)
DEMO="$ROOT/build-demo"

echo "== installing dependencies (apt)"
tests/deps.sh --no-newest-pebble
echo "== building"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

rm -rf "$DEMO"; mkdir -p "$DEMO"
echo "== starting Pebble (ACME test CA) on 127.0.0.1:14000, its DNS on 127.0.0.1:8053"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=acmed demo TLS root" -keyout "$DEMO/pebble-tls-ca.key" \
	-out "$DEMO/pebble-tls-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$DEMO/pebble-tls.key" -out "$DEMO/pebble-tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$DEMO/san.ext"
openssl x509 -req -in "$DEMO/pebble-tls.csr" -CA "$DEMO/pebble-tls-ca.pem" \
	-CAkey "$DEMO/pebble-tls-ca.key" -CAcreateserial -days 2 -extfile "$DEMO/san.ext" \
	-out "$DEMO/pebble-tls.pem" 2>/dev/null
cat > "$DEMO/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
 "certificate": "$DEMO/pebble-tls.pem", "privateKey": "$DEMO/pebble-tls.key",
 "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
 "externalAccountBindingRequired": false}}
JSON
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 127.0.0.1:8053 \
	-http01 "" -https01 "" -tlsalpn01 "" -management 127.0.0.1:8055 \
	>"$DEMO/challtestsrv.log" 2>&1 &
CHALL=$!
PEBBLE_VA_NOSLEEP=1 pebble -config "$DEMO/pebble.json" -dnsserver 127.0.0.1:8053 \
	>"$DEMO/pebble.log" 2>&1 &
PEBBLE=$!
trap 'kill $PEBBLE $CHALL 2>/dev/null || true' EXIT INT TERM
i=0
until curl -fsS --cacert "$DEMO/pebble-tls-ca.pem" https://127.0.0.1:14000/dir >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "Pebble did not start; see $DEMO/pebble.log"; exit 1; }
	sleep 0.1
done

echo "== acmed -c config/demo.yaml run --once"
build/acmed -c config/demo.yaml run --once --timeout 120

echo "== the certificates"
for name in web mail api; do
	dir="$DEMO/live/$name"
	echo "-- $dir"
	ls -lL "$dir" | sed 1d
	openssl x509 -in "$dir/cert.pem" -noout -subject -issuer -enddate -ext subjectAltName 2>/dev/null |
		sed 's/^/   /'
done
echo "== running again: nothing is due, nothing is re-issued"
build/acmed -c config/demo.yaml run --once --timeout 60
