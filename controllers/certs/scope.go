package certs

import (
	"net/http"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// scopedManager hands the rotator a REST config whose lists and watches
// of Secrets and MutatingWebhookConfigurations name one object each.
// rotator.AddRotator builds its cache from mgr.GetConfig() with fixed
// options (cert-controller v0.16.0 pkg/rotator/rotator.go:194-216: every
// Secret of the namespace, every webhook configuration of the cluster);
// this is the one way to narrow it. Everything else is the manager's.
type scopedManager struct {
	manager.Manager
	cfg *rest.Config
}

// GetConfig returns the scoped config.
func (m scopedManager) GetConfig() *rest.Config { return m.cfg }

// scopedConfig returns a copy of cfg whose GET requests on the
// collections of Secrets in o.Namespace and of MutatingWebhookConfigurations
// (lists and watches) carry fieldSelector=metadata.name=<the one name>: the
// API server sends nothing else, so the rotator's cache holds no other
// Secret, and RBAC can grant list and watch by resourceNames.
func scopedConfig(cfg *rest.Config, o Options) *rest.Config {
	c := rest.CopyConfig(cfg)
	only := map[string]string{
		"/api/v1/namespaces/" + o.Namespace + "/secrets":                      o.SecretName,
		"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations": o.WebhookConfigName,
	}
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &nameScope{next: rt, only: only} })
	return c
}

// nameScope adds the field selector to GET requests on the listed
// collection paths.
type nameScope struct {
	next http.RoundTripper
	only map[string]string // collection path -> the one name
}

// RoundTrip implements http.RoundTripper.
func (s *nameScope) RoundTrip(req *http.Request) (*http.Response, error) {
	name, ok := s.scope(req)
	if !ok {
		return s.next.RoundTrip(req)
	}
	r := req.Clone(req.Context()) // a RoundTripper must not change the caller's request
	q := r.URL.Query()
	q.Set("fieldSelector", "metadata.name="+name)
	r.URL.RawQuery = q.Encode()
	return s.next.RoundTrip(r)
}

// scope returns the name a request must be narrowed to. The config's host
// may carry a path prefix (an API proxy), hence the suffix match.
func (s *nameScope) scope(req *http.Request) (string, bool) {
	if req.Method != http.MethodGet {
		return "", false
	}
	for path, name := range s.only {
		if strings.HasSuffix(req.URL.Path, path) {
			return name, true
		}
	}
	return "", false
}
