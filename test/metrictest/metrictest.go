// Package metrictest reads metrics out of a prometheus.Gatherer, for tests
// that hold only the registry, not the collectors (a test holding the
// collector reads it with prometheus/testutil.ToFloat64).
package metrictest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Sum returns the sum of the values (counter, gauge or untyped) of metric
// name's series whose labels include every pair in labels ("label",
// "value", ...). It is 0 when no series matches.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metrictest.Sum: labels %q are not label/value pairs", labels)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if matches(have, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	return sum
}

// Labelled lists every series in g carrying label=value, as
// name{label="value"}, sorted.
func Labelled(t testing.TB, g prometheus.Gatherer, label, value string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var found []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					found = append(found, mf.GetName()+"{"+label+`="`+value+`"}`)
				}
			}
		}
	}
	slices.Sort(found)
	return found
}

// matches reports whether have holds every label/value pair.
func matches(have map[string]string, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := have[pairs[i]]; !ok || v != pairs[i+1] {
			return false
		}
	}
	return true
}
