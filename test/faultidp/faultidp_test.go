package faultidp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/wait"
)

// get fetches path with a client that gives up after timeout.
func get(t *testing.T, s *Server, path string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestServesTheIssuerNormally(t *testing.T) {
	t.Parallel()
	s := New(t)
	resp, body, err := get(t, s, "/.well-known/openid-configuration", 5*time.Second)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("got %v, %v, want the discovery document", resp, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Issuer != s.URL || doc.JWKSURI != s.URL+"/jwks" {
		t.Fatalf("got document %s (%v), want issuer %s", body, err, s.URL)
	}
	resp, body, err = get(t, s, "/jwks", 5*time.Second)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %v, %v, want the key set with no-store", resp, err)
	}
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 2 || len(s.KIDs()) != 2 {
		t.Fatalf("got key set %s (%v), want 2 keys", body, err)
	}
	if _, _, err := get(t, s, "/nothing", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, j, o, all := s.Hits(Discovery), s.Hits(JWKS), s.Hits(Other), s.Hits(All); d != 1 || j != 1 || o != 1 || all != 3 {
		t.Fatalf("got hits discovery %d, jwks %d, other %d, all %d; want 1, 1, 1, 3", d, j, o, all)
	}
}

func TestFaultsApplyToTheirEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault Fault
		check func(resp *http.Response, body []byte, err error) string
	}{
		{Down, func(resp *http.Response, _ []byte, err error) string {
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
				return "want 503"
			}
			return ""
		}},
		{Hang, func(_ *http.Response, _ []byte, err error) string {
			if !errors.Is(err, context.DeadlineExceeded) {
				return "want the client's deadline before any answer"
			}
			return ""
		}},
		{Trickle, func(resp *http.Response, body []byte, err error) string {
			if resp == nil || resp.StatusCode != http.StatusOK || !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(string(body), `{"keys":[`) {
				return "want 200 and a body that never ends"
			}
			return ""
		}},
		{TrickleHeaders, func(_ *http.Response, _ []byte, err error) string {
			if !errors.Is(err, context.DeadlineExceeded) {
				return "want the client's deadline before the header ends"
			}
			return ""
		}},
		{HugeLength, func(resp *http.Response, body []byte, err error) string {
			if err != nil || resp.ContentLength != int64(len(body)) || len(body) < Padding {
				return "want a padded body with its Content-Length"
			}
			return ""
		}},
		{HugeChunked, func(resp *http.Response, body []byte, err error) string {
			if err != nil || resp.ContentLength != -1 || len(body) < Padding {
				return "want a padded body without a Content-Length"
			}
			return ""
		}},
		{Garbage, func(_ *http.Response, body []byte, err error) string {
			if err != nil || json.Valid(body) {
				return "want a body that is not JSON"
			}
			return ""
		}},
		{SymmetricKey, func(_ *http.Response, body []byte, err error) string {
			if err != nil || !strings.Contains(string(body), `"kty":"oct"`) {
				return "want a symmetric key"
			}
			return ""
		}},
		{RedirectPlainHTTP, func(resp *http.Response, _ []byte, err error) string {
			if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "http://") {
				return "want a redirect to plain http"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			s := New(t)
			s.Set(JWKS, tc.fault)
			resp, body, err := get(t, s, "/jwks", 300*time.Millisecond)
			if msg := tc.check(resp, body, err); msg != "" {
				t.Fatalf("got %v, %d bytes, %v; %s", resp, len(body), err, msg)
			}
			if resp, _, err := get(t, s, "/.well-known/openid-configuration", 5*time.Second); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("got discovery %v, %v, want it unaffected by a JWKS fault", resp, err)
			}
			if n := s.Hits(JWKS); n != 1 {
				t.Fatalf("got %d JWKS hits, want 1", n)
			}
		})
	}
}

func TestInFlightFollowsTheClient(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{Hang, TrickleHeaders} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			s := New(t)
			s.Set(All, f)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/.well-known/openid-configuration", nil)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			wait.For(t, 0, func() bool { return s.Hits(Discovery) == 1 }, "the request to arrive")
			if !s.InFlight(1) || s.InFlight(2) {
				t.Fatalf("got in flight %v, %v; want the first request and no second one", s.InFlight(1), s.InFlight(2))
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want the client to give up", err)
			}
			wait.For(t, 0, func() bool { return !s.InFlight(1) }, "the server to see the client hang up")
		})
	}
}

func TestBlockHoldsUntilUnblocked(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.Set(JWKS, Block)
	s.SetCacheControl("max-age=300")
	got := make(chan *http.Response, 1)
	go func() {
		resp, _, _ := get(t, s, "/jwks", 10*time.Second)
		got <- resp
	}()
	<-s.Arrived()
	if !s.InFlight(1) {
		t.Fatal("got the blocked request finished, want it held")
	}
	s.Unblock()
	if resp := <-got; resp == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "max-age=300" {
		t.Fatalf("got %v, want the key set with max-age=300 once unblocked", resp)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.EditDiscovery(func(d *devissuer.Discovery) { d.Issuer = "https://other.example" })
	s.SetKeySet(`{"keys":["not a key"]}`)
	s.SetCacheControl("")
	_, body, err := get(t, s, "/.well-known/openid-configuration", 5*time.Second)
	if err != nil || !strings.Contains(string(body), `"issuer":"https://other.example"`) {
		t.Fatalf("got %s, %v, want the overridden issuer", body, err)
	}
	resp, body, err := get(t, s, "/jwks", 5*time.Second)
	if err != nil || string(body) != `{"keys":["not a key"]}` || resp.Header.Get("Cache-Control") != "" {
		t.Fatalf("got %s (Cache-Control %q), %v, want the raw key set without Cache-Control", body, resp.Header.Get("Cache-Control"), err)
	}
	s.SetDelay(Discovery, 100*time.Millisecond)
	start := time.Now()
	if _, _, err := get(t, s, "/.well-known/openid-configuration", 5*time.Second); err != nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("got %v after %v, want an answer after the 100ms delay", err, time.Since(start))
	}
}
