package translate

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/pathpattern"
	"github.com/authgate/authgate/proxy/urlrule"
)

const grammarIssuer = "https://idp.example.com/"

// grammarPolicy is a valid policy but for the path pattern or URLs under
// test.
func grammarPolicy(path, issuerURL, jwksURL string) *v1alpha1.AuthPolicy {
	p := &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Name: "grammar", Namespace: testNS, Generation: 1}}
	p.Spec.Selector = &metav1.LabelSelector{}
	p.Spec.Routes = []v1alpha1.Route{{Paths: []string{path}}}
	p.Spec.Authentication = &v1alpha1.Authentication{JWT: []v1alpha1.JWTIssuer{{IssuerURL: issuerURL, JWKSURL: jwksURL, Audiences: []string{"api"}}}}
	return p
}

// grammarField is one CRD field with a grammar package behind it.
type grammarField struct {
	name   string
	re     *regexp.Regexp
	maxLen int
	rule   func(string) error
	policy func(string) *v1alpha1.AuthPolicy
	status string // the status path of the field
}

func grammarFields() []grammarField {
	parse := func(s string) error { _, err := pathpattern.Parse(s); return err }
	return []grammarField{
		{"path", regexp.MustCompile(pathpattern.CRDRegexp), pathpattern.MaxLen, parse,
			func(s string) *v1alpha1.AuthPolicy { return grammarPolicy(s, grammarIssuer, "") }, "spec.routes[0].paths[0]"},
		{"issuerURL", regexp.MustCompile(urlrule.IssuerCRDRegexp), urlrule.MaxLen, urlrule.Issuer,
			func(s string) *v1alpha1.AuthPolicy { return grammarPolicy("/", s, "") }, "spec.authentication.jwt[0].issuerURL"},
		{"jwksURL", regexp.MustCompile(urlrule.JWKSCRDRegexp), urlrule.MaxLen, urlrule.JWKS,
			func(s string) *v1alpha1.AuthPolicy { return grammarPolicy("/", grammarIssuer, s) }, "spec.authentication.jwt[0].jwksURL"},
	}
}

// checkAdmitted asserts what happens to a value the API server admits: it
// is accepted if the grammar accepts it, and otherwise the grammar's error
// is in the problem the controller writes to status, at the field's path.
func checkAdmitted(t *testing.T, f grammarField, value string) {
	t.Helper()
	_, prob := Translate(context.Background(), Input{Policy: f.policy(value)})
	err := f.rule(value)
	switch {
	case err == nil && prob != nil:
		t.Fatalf("%s %q: got problem %v, want none (the grammar accepts it)", f.name, value, prob)
	case err != nil && (prob == nil || prob.Reason != ReasonInvalidSpec || !strings.Contains(prob.Message, f.status+": "+err.Error())):
		t.Fatalf("%s %q: got problem %v, want %s with %q", f.name, value, prob, ReasonInvalidSpec, f.status+": "+err.Error())
	}
}

// TestCRDAdmittedValuesAreReported: values the CRD's patterns admit but the
// grammar packages refuse land in status with the grammar's message.
func TestCRDAdmittedValuesAreReported(t *testing.T) {
	t.Parallel()
	values := map[string][]string{
		"path":      {"/", "/a/*/b/", "/a/**", "/a/../b", "/.", "//", "/a/**/b", "/a*", "/**/"},
		"issuerURL": {grammarIssuer, "http://[::1]:8080/dex", "https://u:p@idp.example.com/", "https:///x", "https://idp.example.com:/", "https://idp.example.com/%zz"},
		"jwksURL":   {"https://idp.example.com/keys?x=1", "http://localhost?x", "https://sekrit@idp.example.com/keys", "https://idp.example.com/%zz?q"},
	}
	for _, f := range grammarFields() {
		for _, v := range values[f.name] {
			t.Run(f.name+" "+v, func(t *testing.T) {
				t.Parallel()
				if !f.re.MatchString(v) {
					t.Fatalf("%q does not match the CRD pattern; the case tests nothing", v)
				}
				checkAdmitted(t, f, v)
			})
		}
	}
}

// FuzzCRDAdmittedValues: for any value the API server would admit for a
// path pattern, issuer URL or JWKS URL (the CRD's pattern and maxLength,
// valid UTF-8 as every JSON string), the controller either accepts it or
// reports the grammar's error in status.
func FuzzCRDAdmittedValues(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/a/**/b", "https://u@idp.example.com/", "http://localhost:1/x", "https://idp.example.com/?q"} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
	}
	fields := grammarFields()
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		g := fields[int(which)%len(fields)]
		if !utf8.ValidString(value) || len(value) > g.maxLen || !g.re.MatchString(value) {
			return
		}
		checkAdmitted(t, g, value)
	})
}
