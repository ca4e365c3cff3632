package controllers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
)

// bodyMarker is served in IdP responses; no status may ever quote it.
const bodyMarker = "SECRET-BODY-MARKER"

// An issuer the controller's fetch policy refuses (the suite allows only
// loopback beyond the default) is reported IssuersReady=False with reason
// AddressNotAllowed and the refused address and range in the message, which
// never quotes what the IdP sent. The policy is still rendered: the
// sidecars fetch from their own pod's network.
func TestFetchPolicyRefusalReachesStatus(t *testing.T) {
	// An allowed IdP on loopback whose discovery document (with the marker
	// in it) names key sets on refused addresses, and one answering errors.
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("/private/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base + "/private", "jwks_uri": "https://10.0.0.1/jwks", "note": bodyMarker})
	})
	mux.HandleFunc("/broken/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>" + bodyMarker + "</html>"))
	})
	mux.HandleFunc("/html/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>" + bodyMarker + "</html>"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL

	tests := []struct {
		name, issuer, reason string
		want                 []string
	}{
		{"metadata address", "https://169.254.169.254", controllers.ReasonAddressNotAllowed,
			[]string{"issuer https://169.254.169.254: discovery: address 169.254.169.254 is not allowed by the fetch policy (link-local)", "--fetch-allow-cidrs"}},
		{"discovered jwks_uri on a private address", base + "/private", controllers.ReasonAddressNotAllowed,
			[]string{"jwks: address 10.0.0.1 is not allowed by the fetch policy (private)"}},
		{"error page", base + "/broken", controllers.ReasonFetchFailed,
			[]string{`unexpected status 502 (content type "text/html")`}},
		{"HTML instead of JSON", base + "/html", controllers.ReasonFetchFailed,
			[]string{`not the expected JSON document: invalid JSON at byte 1 (content type "text/html")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			if err := k8s.Create(context.Background(), jwtPolicy(t, ns, "fn", tt.issuer)); err != nil {
				t.Fatal(err)
			}
			p := waitCondition(t, ns, "fn", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, tt.reason)
			c := condition(p, v1alpha1.ConditionIssuersReady)
			for _, w := range tt.want {
				if !strings.Contains(c.Message, w) {
					t.Errorf("got message %q, want it to contain %q", c.Message, w)
				}
			}
			for _, text := range []string{c.Message, p.Status.Issuers[0].Error} {
				if strings.Contains(text, bodyMarker) || strings.Contains(text, "<html>") {
					t.Errorf("got %q in status, want nothing of the response body", text)
				}
			}
			waitCondition(t, ns, "fn", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
		})
	}
}
