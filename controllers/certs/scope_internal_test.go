package certs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// Lists and watches of the two collections name the one object; nothing
// else changes, and the caller's request is left as it was.
func TestScopedConfigNamesTheOneObject(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got = map[string]string{} // method+path+query -> fieldSelector
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method+" "+r.URL.Path+"?"+r.URL.Query().Get("watch")] = r.URL.Query().Get("fieldSelector")
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	o := Options{Namespace: "gate", SecretName: "tls", WebhookConfigName: "injector"}
	const secrets, whcs = "/api/v1/namespaces/gate/secrets", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
	tests := []struct {
		method, host, path, query, want string
	}{
		{"GET", "", secrets, "", "metadata.name=tls"},
		{"GET", "", secrets, "watch=true", "metadata.name=tls"},
		{"GET", "", secrets, "fieldSelector=metadata.name%3Dother", "metadata.name=tls"},
		{"GET", "/proxy/cluster-1", secrets, "", "metadata.name=tls"},
		{"GET", "", whcs, "watch=true", "metadata.name=injector"},
		{"GET", "", secrets + "/tls", "", ""},
		{"GET", "", "/api/v1/namespaces/other/secrets", "", ""},
		{"GET", "", "/api/v1/secrets", "", ""},
		{"PUT", "", secrets + "/tls", "", ""},
		{"GET", "", "/api/v1/namespaces/gate/configmaps", "", ""},
	}
	for _, tc := range tests {
		cfg := scopedConfig(&rest.Config{Host: srv.URL + tc.host}, o)
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		url := srv.URL + tc.host + tc.path
		if tc.query != "" {
			url += "?" + tc.query
		}
		req, err := http.NewRequestWithContext(context.Background(), tc.method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := req.URL.RawQuery
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.URL.RawQuery != before {
			t.Errorf("%s %s: the caller's query changed to %q", tc.method, url, req.URL.RawQuery)
		}
		mu.Lock()
		watch := req.URL.Query().Get("watch")
		sel, seen := got[tc.method+" "+tc.host+tc.path+"?"+watch]
		mu.Unlock()
		wantSel := tc.want
		if wantSel == "" {
			wantSel = req.URL.Query().Get("fieldSelector")
		}
		if !seen || sel != wantSel {
			t.Errorf("%s %s: server saw fieldSelector %q (seen %v), want %q", tc.method, url, sel, seen, wantSel)
		}
	}
}
