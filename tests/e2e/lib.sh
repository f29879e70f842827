# What the shell test scripts share (sourced): a temporary directory $T
# removed on exit, pass/fail counters, and expect_rc, which runs a command
# with its output in $T/out and $T/err and checks its exit code.
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "FAIL: $*"; }
expect_rc() { # expect_rc WANT DESC -- cmd...
  local want=$1 desc=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -eq "$want" ]; then ok; else bad "$desc: exit $rc, want $want"; sed 's/^/    /' "$T/err" | head -5; fi
}
