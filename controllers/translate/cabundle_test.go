package translate

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/test/testca"
)

func TestTranslateCABundle(t *testing.T) {
	t.Parallel()
	ca, other := testca.New(t), testca.New(t)
	cm := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name}, Data: data}
	}
	cms := map[string]*corev1.ConfigMap{
		"idp-ca":           cm("idp-ca", map[string]string{"ca.crt": "# comment\n" + ca.PEM, "both.pem": ca.PEM + other.PEM, "junk": "not PEM at all"}),
		ClusterCAConfigMap: cm(ClusterCAConfigMap, map[string]string{"ca.crt": other.PEM}),
		"elsewhere":        {ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "elsewhere"}, Data: map[string]string{"ca.crt": ca.PEM}},
	}
	spec := func(refs ...string) string {
		s := "selector: {}\nroutes: [{}]\nauthentication:\n  jwt:\n"
		for _, r := range refs {
			s += "    - {issuerURL: 'https://idp.example.com', audiences: [fn]"
			if r != "" {
				s += ", certificateAuthority: {configMapKeyRef: " + r + "}"
			}
			s += "}\n"
		}
		return s
	}
	tests := []struct {
		name       string
		spec       string
		wantCA     []string
		wantReason string
		wantMsg    []string
	}{
		{name: "none: the system roots", spec: spec(""), wantCA: []string{""}},
		{name: "default key, normalized", spec: spec("{name: idp-ca}"), wantCA: []string{ca.PEM}},
		{name: "named key", spec: spec("{name: idp-ca, key: both.pem}"), wantCA: []string{ca.PEM + other.PEM}},
		{name: "the cluster CA", spec: spec("{name: kube-root-ca.crt, key: ca.crt}"), wantCA: []string{other.PEM}},
		{name: "one issuer each", spec: spec("{name: idp-ca}", ""), wantCA: []string{ca.PEM, ""}},
		{name: "missing configmap", spec: spec("{name: nope}"), wantReason: ReasonConfigMapNotFound,
			wantMsg: []string{`spec.authentication.jwt[0].certificateAuthority.configMapKeyRef: ConfigMap "nope" not found in namespace team-a`, "authgate.dev/role: ca"}},
		{name: "configmap of another namespace", spec: spec("{name: elsewhere}"), wantReason: ReasonConfigMapNotFound, wantMsg: []string{`ConfigMap "elsewhere" not found`}},
		{name: "missing key", spec: spec("{name: idp-ca, key: tls.crt}"), wantReason: ReasonCAKeyNotFound,
			wantMsg: []string{`ConfigMap "idp-ca" has no key "tls.crt" in its data (keys: both.pem, ca.crt, junk)`}},
		{name: "garbage", spec: spec("{name: idp-ca, key: junk}"), wantReason: ReasonCABundleInvalid,
			wantMsg: []string{`key "junk" of ConfigMap "idp-ca" is not a usable CA bundle: CA bundle holds no PEM CERTIFICATE block`}},
		{name: "every bad issuer of the kind listed", spec: spec("{name: nope}", "", "{name: gone}"), wantReason: ReasonConfigMapNotFound,
			wantMsg: []string{"jwt[0]", "jwt[2]", `"nope"`, `"gone"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, prob := Translate(context.Background(), Input{Policy: policyYAML(t, "fn", tt.spec), CAConfigMaps: cms})
			if tt.wantReason != "" {
				if prob == nil || prob.Reason != tt.wantReason {
					t.Fatalf("got problem %v, want reason %s", prob, tt.wantReason)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(prob.Message, m) {
						t.Errorf("got message %q, want it to contain %q", prob.Message, m)
					}
				}
				if strings.Contains(prob.Message, "BEGIN") || strings.Contains(prob.Message, "not PEM at all") {
					t.Errorf("got message %q quoting the ConfigMap's content", prob.Message)
				}
				return
			}
			if prob != nil {
				t.Fatalf("got problem %v, want none", prob)
			}
			if len(f.Issuers) != len(tt.wantCA) {
				t.Fatalf("got %d issuers, want %d", len(f.Issuers), len(tt.wantCA))
			}
			for i, want := range tt.wantCA {
				if got := f.Issuers[i].CABundle; got != want {
					t.Errorf("issuer %d: got caBundle %q, want %q", i, got, want)
				}
			}
		})
	}
}
