package pathcanon

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// seen records what the upstream received.
type seen struct {
	mu         sync.Mutex
	requestURI string
	path       string
}

// TestForwardedPathIsWhatThePolicySaw sends raw request lines through a
// real ReverseProxy and checks the upstream receives exactly the canonical
// path the policy would have seen.
func TestForwardedPathIsWhatThePolicySaw(t *testing.T) {
	t.Parallel()
	var got seen
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.mu.Lock()
		got.requestURI, got.path = r.RequestURI, r.URL.Path
		got.mu.Unlock()
	}))
	t.Cleanup(upstream.Close)
	target, err := url.Parse(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	var policyMu sync.Mutex
	var policySaw string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := Canonicalize(RequestPath(r.URL))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		Apply(r.URL, res)
		policyMu.Lock()
		policySaw = res.Path
		policyMu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	tests := []struct {
		target, wantURI, wantPath string
		wantStatus                int
	}{
		{"/api/v1/orders/42?x=1", "/api/v1/orders/42?x=1", "/api/v1/orders/42", 200},
		{"//evil/x", "/evil/x", "/evil/x", 200},
		{"/public/%2e%2e/admin", "/admin", "/admin", 200},
		{"/public/../admin/", "/admin/", "/admin/", 200},
		{"/%61dmin//users", "/admin/users", "/admin/users", 200},
		{"/caf%C3%A9", "/caf%C3%A9", "/café", 200},
		{"/a%2Fb", "", "", 400},
		{`/a%2Fb/"x`, "", "", 400},
		{"/admin;x=1", "", "", 400},
		{"/public/..%5cadmin", "", "", 400},
		{"/public/%252e%252e/admin", "", "", 400},
		{"/../admin", "", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			status := rawGet(t, front.Listener.Addr().String(), tt.target)
			if status != tt.wantStatus {
				t.Fatalf("got status %d, want %d", status, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			got.mu.Lock()
			uri, p := got.requestURI, got.path
			got.mu.Unlock()
			policyMu.Lock()
			saw := policySaw
			policyMu.Unlock()
			if uri != tt.wantURI || p != tt.wantPath {
				t.Fatalf("got upstream URI %q path %q, want %q %q", uri, p, tt.wantURI, tt.wantPath)
			}
			if saw != p {
				t.Fatalf("got policy path %q, upstream path %q, want them equal", saw, p)
			}
		})
	}
}

// rawGet sends one request line as written and returns the status code.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: fn.example\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
