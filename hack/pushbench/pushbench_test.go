package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestRequestKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, url, want string }{
		{http.MethodPost, "/apis/authentication.k8s.io/v1/tokenreviews", "POST tokenreviews"},
		{http.MethodGet, "/api/v1/namespaces/pushbench/secrets/authgate-proxy-config", "GET secrets"},
		{http.MethodGet, "/api/v1/pods?limit=500", "LIST pods"},
		{http.MethodGet, "/api/v1/pods?watch=true", "WATCH pods"},
		{http.MethodPatch, "/apis/authgate.dev/v1alpha1/namespaces/pushbench/authpolicies/bench/status", "PATCH authpolicies/status"},
		{http.MethodGet, "/apis", "GET /apis"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestKey(&http.Request{Method: tc.method, URL: u}); got != tc.want {
			t.Errorf("%s %s: got %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := quantile(ds, tc.q); got != tc.want {
			t.Errorf("quantile %v: got %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of none: got %s, want 0", got)
	}
}

func TestStatusWatcher(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := &statusWatcher{events: []statusEvent{
		{At: at(0), Text: "0/2 at generation 1"},
		{At: at(2), Text: "2/2 at generation 1", Enforcing: 2},
		{At: at(5), Text: "0/2 at generation 2"},
		{At: at(6), Text: "1/2 at generation 2", Enforcing: 1},
		{At: at(7), Text: "2/2 at generation 2", Enforcing: 2},
	}}
	if got, ok := w.firstSince(at(4), "2/2 at generation 2"); !ok || !got.Equal(at(7)) {
		t.Errorf("firstSince after the update: got %v %v, want %v", got, ok, at(7))
	}
	if got, ok := w.firstSince(at(3), "2/2 at generation 1"); !ok || !got.Equal(at(3)) {
		t.Errorf("firstSince while it reads the text: got %v %v, want the start", got, ok)
	}
	if low, back, changed := w.lowestSince(at(4), "2/2 at generation 2"); !changed || low != 0 || !back.Equal(at(7)) {
		t.Errorf("lowestSince: got %d %v %v, want 0 and back at %v", low, back, changed, at(7))
	}
	if _, _, changed := w.lowestSince(at(8), "2/2 at generation 2"); changed {
		t.Error("lowestSince after the last change: changed, want unchanged")
	}
}
