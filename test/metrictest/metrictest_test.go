package metrictest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSumAndLabelled(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"policy", "result"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keys", Help: "h"}, []string{"policy"})
	reg.MustRegister(c, g)
	c.WithLabelValues("a", "ok").Add(2)
	c.WithLabelValues("a", "error").Add(3)
	c.WithLabelValues("b", "ok").Add(5)
	g.WithLabelValues("a").Set(7)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"requests_total", nil, 10},
		{"requests_total", []string{"policy", "a"}, 5},
		{"requests_total", []string{"policy", "a", "result", "ok"}, 2},
		{"requests_total", []string{"policy", "c"}, 0},
		{"keys", []string{"policy", "a"}, 7},
		{"absent", nil, 0},
	} {
		if got := Sum(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Sum(%s, %q): got %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got, want := Labelled(t, reg, "policy", "a"), []string{`keys{policy="a"}`, `requests_total{policy="a"}`, `requests_total{policy="a"}`}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := Labelled(t, reg, "policy", "c"); got != nil {
		t.Errorf("got %q, want none", got)
	}
}
