#!/usr/bin/env bash
# Test the Prometheus alerts with promtool (what `make alerts-test` runs):
#   1. config/prometheus/alerts.yaml is the chart's rules with its default
#      values (hack/sync-alerts.sh --check), so what is tested below is what
#      both installs ship;
#   2. promtool check rules on its rule groups;
#   3. every alert has a test that makes it fire and one that must not
#      (config/prometheus/tests/*.test.yaml), and promtool test rules passes;
#   4. the chart rendered with other values (alert labels, thresholds,
#      another release and namespace, no ServiceMonitor) still yields valid
#      rules.
# PROMTOOL and HELM override the tools' paths (default: installed into ./bin).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
promtool="${PROMTOOL:-$("$root/hack/promtool.sh")}"
helm="${HELM:-$("$root/hack/helm.sh")}"
tests="$root/config/prometheus/tests"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

HELM="$helm" "$root/hack/sync-alerts.sh" --check

# The tests name their rule file alerts.rules.yaml, next to them.
"$root/hack/sync-alerts.sh" --rules "$root/config/prometheus/alerts.yaml" >"$tmp/alerts.rules.yaml"
"$promtool" check rules "$tmp/alerts.rules.yaml"

alerts="$(sed -n 's/^ *- alert: *//p' "$tmp/alerts.rules.yaml" | sort -u)"
# For each alertname under test: "fire" when a test expects alerts,
# "quiet" when one expects none (exp_alerts: []).
cases="$(awk '
  /^ *(- )?alertname:/ { sub(/^ *(- )?alertname: */, ""); name = $0; next }
  /^ *exp_alerts: *\[\] *$/ { print name, "quiet"; next }
  /^ *exp_alerts: *$/ { print name, "fire" }
' "$tests"/*.test.yaml | sort -u)"
missing=0
for a in $alerts; do
  for kind in fire quiet; do
    if ! grep -qx "$a $kind" <<<"$cases"; then
      echo "alert $a has no test where it must $([[ $kind == fire ]] && echo fire || echo "not fire") (config/prometheus/tests)" >&2
      missing=1
    fi
  done
done
while read -r a; do
  grep -qx "$a" <<<"$alerts" || { echo "config/prometheus/tests test $a, which is no alert" >&2; missing=1; }
done < <(cut -d' ' -f1 <<<"$cases" | sort -u)
((missing == 0))

cp "$tests"/*.test.yaml "$tmp/"
"$promtool" test rules "$tmp"/*.test.yaml

# Other values: a values file, since --set takes 0.2 for a string.
cat >"$tmp/other.yaml" <<'VALUES'
nameOverride: gate
webhook: {failurePolicy: Ignore}
jwks: {maxStaleness: 6h}
monitoring:
  serviceMonitor: {enabled: true}
  prometheusRule:
    alertLabels: {team: platform, page: "no"}
    denySpike: {factor: 5, minRate: 0.2, for: 15m}
VALUES
for values in \
  "--namespace authgate-system --set monitoring.serviceMonitor.enabled=true" \
  "--namespace gate -f $tmp/other.yaml" \
  "--namespace authgate-system --set monitoring.serviceMonitor.enabled=false"; do
  # shellcheck disable=SC2086 # the values are separate arguments
  "$helm" template authgate "$root/charts/authgate" $values --set monitoring.prometheusRule.enabled=true \
    --show-only templates/monitoring.yaml >"$tmp/rendered.yaml"
  "$root/hack/sync-alerts.sh" --rules "$tmp/rendered.yaml" >"$tmp/rendered.rules.yaml"
  echo "chart ${values//$tmp\//}:"
  "$promtool" check rules "$tmp/rendered.rules.yaml"
  if [[ "$values" == *other.yaml* ]]; then
    rules="$(grep -c '^ *- alert: ' "$tmp/rendered.rules.yaml")"
    labelled="$(grep -c '^ *team: platform$' "$tmp/rendered.rules.yaml")"
    if ((rules != labelled)); then
      echo "alertLabels: $labelled of $rules rendered alerts carry team=platform" >&2
      exit 1
    fi
  fi
done
