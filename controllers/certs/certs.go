// Package certs keeps the TLS of the controller's admission webhook server
// when cert-manager does not, through Gatekeeper's cert-controller
// (github.com/open-policy-agent/cert-controller/pkg/rotator): a self-signed
// CA and a serving certificate in one Secret shared by every replica (the
// source of truth; the chart ships it empty and the rotator fills it), the
// CA in every webhook's caBundle of the MutatingWebhookConfiguration, and
// renewal before expiry. tls.crt and tls.key reach the webhook server's
// certificate directory through the pod's Secret volume, and the webhook
// server reloads them when they change (controller-runtime's certwatcher).
//
// This package only wires the rotator: options and their checks, a cache
// scoped to the one Secret and the one webhook configuration (scope.go),
// and a gate that registers the webhook handlers, which starts the webhook
// server, once the certificate is in the directory and the caBundle is
// published. What the rotator does differently from a hand-written one (a
// new CA replaces the old one at once, without an overlap) is in
// docs/webhook-certificates.md.
//
// With cert-manager (the Helm chart's option) none of this runs.
package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The rotator reads the Secret and the webhook configuration through its
// own cache, which lists and watches only the two names (scope.go), and
// updates both; it never creates the Secret. Reading Secrets is granted
// once, cluster-wide, by the ClusterRole (the AuthPolicy controller reads
// API-key Secrets in every namespace), so the namespaced Role adds only
// update on the one Secret. Namespace and names are the chart's defaults:
// the chart renders its Role and ClusterRole from these rules with its own
// names (charts/authgate/templates/rbac.yaml).
//
// +kubebuilder:rbac:groups="",namespace=authgate-system,resources=secrets,resourceNames=authgate-webhook-tls,verbs=update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=authgate-injector,verbs=get;list;watch;update

// Subject of the CA certificate.
const (
	caName         = "authgate-webhook-ca"
	caOrganization = "authgate"
	fieldOwner     = "authgate-controller"
)

// Add registers the rotator with mgr, a readyz check "webhook-certs" that
// fails until the certificates are ready, and a runnable that then calls
// whenReady (nil: nothing). The certificates are ready once tls.crt is in
// CertDir and the CA in the caBundle. whenReady registers the webhook
// handlers: the webhook server starts with its first handler and fails
// without tls.crt. Every replica runs the rotator (no leader election):
// each needs the certificate, and each publishes the same caBundle.
func Add(mgr manager.Manager, o Options, whenReady func() error) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	ready := make(chan struct{})
	if err := rotator.AddRotator(scopedManager{Manager: mgr, cfg: scopedConfig(mgr.GetConfig(), o)}, o.rotator(ready)); err != nil {
		return fmt.Errorf("webhook certificates: add rotator: %w", err)
	}
	if err := mgr.Add(&gate{ready: ready, run: whenReady, logger: o.Logger}); err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook-certs", readyzCheck(ready)); err != nil {
		return fmt.Errorf("webhook certificates: readyz: %w", err)
	}
	return nil
}

// rotator configures cert-controller from defaulted options.
func (o *Options) rotator(ready chan struct{}) *rotator.CertRotator {
	names := o.dnsNames()
	return &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName},
		CertDir:        o.CertDir,
		CAName:         caName,
		CAOrganization: caOrganization,
		DNSName:        names[0],
		ExtraDNSNames:  names[1:],
		IsReady:        ready,
		Webhooks:       []rotator.WebhookInfo{{Name: o.WebhookConfigName, Type: rotator.Mutating}},
		FieldOwner:     fieldOwner,
		// The webhook server's certwatcher reloads the files the kubelet
		// updates; exiting the process (os.Exit) is not needed.
		RestartOnSecretRefresh: false,
		RequireLeaderElection:  false,
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.CertValidity,
		RotationCheckFrequency: o.CheckInterval,
		LookaheadInterval:      o.RenewBefore,
		ControllerName:         o.ControllerName,
	}
}

// gate calls run once ready is closed, on every replica.
type gate struct {
	ready  <-chan struct{}
	run    func() error
	logger *slog.Logger
}

// NeedLeaderElection is false: every replica serves the webhook.
func (g *gate) NeedLeaderElection() bool { return false }

// Start waits for ready (or ctx) and calls run.
func (g *gate) Start(ctx context.Context) error {
	select {
	case <-g.ready:
	case <-ctx.Done():
		return nil
	}
	g.logger.InfoContext(ctx, "webhook certificates ready: serving the webhooks")
	if g.run == nil {
		return nil
	}
	if err := g.run(); err != nil {
		return fmt.Errorf("webhook certificates ready: %w", err)
	}
	return nil
}

// readyzCheck fails until ready is closed.
func readyzCheck(ready <-chan struct{}) healthz.Checker {
	return func(*http.Request) error {
		select {
		case <-ready:
			return nil
		default:
			return errors.New("webhook certificate not in the cert dir or caBundle not published yet")
		}
	}
}
