#!/bin/sh
# tests/systemd_verify.sh - checks the systemd units offline: systemd-analyze verify, the security exposure score, the polkit rule.
# usage: systemd_verify.sh BUILT_acmed.service acmed.socket acmed-polkit.rules ACMED_BINARY CONFIG_FILE [acmed-tls-alpn.socket]
# (CONFIG_FILE: where the installed unit reads the configuration, /etc/acmed/acmed.yaml for prefix /usr).
# Exit 0 ok, 1 failure, 77 skipped (no systemd-analyze). Prints the exposure score.
set -u
service=$1 socket=$2 rules=$3 binary=$4 config=$5 alpn=${6:-}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

command -v systemd-analyze >/dev/null 2>&1 || { echo "skip: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d /tmp/acmed-units-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# The installed unit names the installed binary; verify checks that it exists,
# so point the copies at the one just built.
case $binary in /*) ;; *) binary=$(pwd)/$binary ;; esac
sed -e "s#^\(Exec[A-Za-z]*=\)[^ ]*/acmed #\1$binary #" "$service" > "$tmp/acmed.service"
cp "$socket" "$tmp/acmed.socket"
units="$tmp/acmed.service $tmp/acmed.socket"
if [ -n "$alpn" ]; then
	cp "$alpn" "$tmp/acmed-tls-alpn.socket"
	units="$units $tmp/acmed-tls-alpn.socket"
	grep -qx 'FileDescriptorName=tls-alpn' "$alpn" ||
		{ echo "FAIL: $alpn must name its socket tls-alpn (acmed tells the sockets apart by it)"; fail=1; }
fi
grep -qF -x "ExecStart=$binary -c $config run" "$tmp/acmed.service" ||
	{ echo "FAIL: unexpected ExecStart= in $service"; grep '^Exec' "$tmp/acmed.service"; fail=1; }
grep -qF -x "ExecReload=$binary -c $config reload" "$tmp/acmed.service" ||
	{ echo "FAIL: unexpected ExecReload= in $service"; fail=1; }

echo "== systemd-analyze verify"
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --generators=no \
	$units 2>&1)
rc=$?
# Lines about our units are problems; lines about the host's units are not ours.
ours=$(printf '%s\n' "$out" | grep -E 'acmed(-tls-alpn)?\.(service|socket)' || true)
printf '%s\n' "$out" | sed '/^$/d'
if [ $rc -ne 0 ] || [ -n "$ours" ]; then
	echo "FAIL: systemd-analyze verify (exit $rc)"
	fail=1
else
	echo "verify: ok"
fi

echo "== systemd-analyze security --offline=yes"
sec=$(systemd-analyze security --offline=yes --no-pager "$tmp/acmed.service" 2>&1)
printf '%s\n' "$sec" | grep -E '^✗' | sed 's/  */ /g'
line=$(printf '%s\n' "$sec" | grep 'Overall exposure level')
echo "$line"
score=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9.]*\) .*/\1/p')
if [ -z "$score" ]; then
	echo "FAIL: no exposure score"; fail=1
elif ! awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s < m) }'; then
	echo "FAIL: exposure $score is not below $MAX_EXPOSURE"; fail=1
fi

echo "== polkit rule"
if command -v node >/dev/null 2>&1; then
	node - "$rules" <<'JS' || fail=1
// Run the rule with a stand-in for polkitd's "polkit" object and check its answers.
const fs = require("fs");
const src = fs.readFileSync(process.argv[2], "utf8");
const rules = [];
const polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: null }, addRule: (f) => rules.push(f) };
new Function("polkit", src)(polkit);
if (rules.length !== 1) { console.log("FAIL: expected one rule"); process.exit(1); }
function ask(id, user, unit, verb) {
	const details = { unit: unit, verb: verb };
	return rules[0]({ id: id, lookup: (k) => details[k] }, { user: user });
}
const M = "org.freedesktop.systemd1.manage-units";
const cases = [
	[M, "acmed", "nginx.service", "reload-or-restart", "yes"],
	[M, "acmed", "postfix.service", "reload", "yes"],
	[M, "acmed", "nginx.service", "start", null],
	[M, "acmed", "nginx.service", "stop", null],
	[M, "acmed", "debug-shell.service", "reload-or-restart", null],
	[M, "acmed", "rescue.target", "restart", null],
	[M, "acmed", undefined, "reload-or-restart", null],
	[M, "www-data", "nginx.service", "reload-or-restart", null],
	["org.freedesktop.systemd1.manage-unit-files", "acmed", "nginx.service", "reload", null],
	["org.freedesktop.login1.reboot", "acmed", undefined, undefined, null],
];
let bad = 0;
for (const [id, user, unit, verb, want] of cases) {
	const got = ask(id, user, unit, verb);
	if ((got === undefined ? null : got) !== want) {
		console.log(`FAIL: ${id} ${user} ${unit} ${verb}: ${got}, expected ${want}`);
		bad = 1;
	}
}
console.log(bad ? "polkit rule: FAIL" : `polkit rule: ok (${cases.length} cases)`);
process.exit(bad);
JS
else
	echo "polkit rule: not checked (no node)"
fi

[ $fail -eq 0 ] && echo "systemd units: ok" || echo "systemd units: FAIL"
exit $fail
