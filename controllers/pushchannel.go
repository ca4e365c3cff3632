package controllers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/proxy/config"
)

// PushOptions serve the push channel (controllers/push, docs/push-channel.md)
// on the leader: each namespace's bundle streamed to its sidecars as it is
// written, and their acknowledgements collected into the AuthPolicy
// status (status.coverage.enforcement, the Enforced condition). It needs
// the injector, whose serving certificate (WebhookCertDir) it serves and
// whose CA the sidecars are given.
type PushOptions struct {
	// Addr is the listen address, e.g. ":8443".
	Addr string
	// ServiceName is the push Service, in Namespace, that selects the pod
	// labelled LabelPushLeader; the sidecars connect to
	// https://<ServiceName>.<Namespace>.svc:<Addr's port>.
	ServiceName string
	// Namespace and PodName are the controller's own (POD_NAMESPACE,
	// POD_NAME): the leader labels its pod.
	Namespace, PodName string
	// ServerName is the name the sidecars verify the certificate for: the
	// webhook Service's <svc>.<namespace>.svc, which the certificate names.
	ServerName string
}

// The push server verifies the sidecars' tokens with TokenReviews.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// url is where the sidecars reach the push server.
func (p *PushOptions) url() (string, error) {
	_, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return "", fmt.Errorf("push listen address %q: %w", p.Addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("push listen address %q: want a port between 1 and 65535", p.Addr)
	}
	return fmt.Sprintf("https://%s.%s.svc:%s", p.ServiceName, p.Namespace, port), nil
}

func (p *PushOptions) validate() error {
	var errs []error
	if _, err := p.url(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ name, v string }{{"push service name", p.ServiceName}, {"namespace (POD_NAMESPACE)", p.Namespace}, {"pod name (POD_NAME)", p.PodName}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required for the push channel", f.name))
		}
	}
	return errors.Join(errs...)
}

// addPush wires the push channel: the server (on the leader only, behind
// the leader's label), the reconciler publishing every bundle it writes,
// and the acknowledgements it returns for the coverage reconciler. It
// returns the Acks, or nil when the channel is off.
func addPush(mgr ctrl.Manager, o *Options, r *Reconciler, reg prometheus.Registerer, logger *slog.Logger) (*push.Acks, error) {
	if o.Push == nil {
		return nil, nil
	}
	if o.Injector == nil {
		return nil, errors.New("the push channel needs the injector (its serving certificate and the sidecars it wires)")
	}
	if err := o.Push.validate(); err != nil {
		return nil, err
	}
	u, _ := o.Push.url()
	inj := *o.Injector
	inj.Push = injector.Push{URL: u, CAFile: filepath.Join(o.WebhookCertDir, "ca.crt"), ServerName: o.Push.ServerName}
	o.Injector = &inj
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("push: clientset: %w", err)
	}
	acks := push.NewAcks()
	reader := mgr.GetAPIReader()
	metrics := push.NewMetrics(reg)
	srv := push.NewServer(push.Options{
		Auth:    push.NewTokenReviewer(cs.AuthenticationV1().TokenReviews(), push.ReviewOptions{Metrics: metrics}),
		Read:    func(ctx context.Context, ns string) ([]byte, error) { return readBundleData(ctx, reader, ns) },
		Acks:    acks,
		Metrics: metrics,
		Logger:  logger.With("component", "push"),
	})
	r.Publisher = srv
	// A restarted container of the pod that led before must not keep the
	// label: clear it before anything runs (the leader sets it again once
	// it serves).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := setPushLeader(ctx, mgr.GetClient(), o.Push.Namespace, o.Push.PodName, false); err != nil {
		return nil, err
	}
	if err := mgr.Add(&pushRunnable{srv: srv, o: *o.Push, certDir: o.WebhookCertDir, client: mgr.GetClient()}); err != nil {
		return nil, fmt.Errorf("add push server: %w", err)
	}
	return acks, nil
}

// readBundleData reads a namespace's bundle (nil when there is none).
func readBundleData(ctx context.Context, reader client.Reader, ns string) ([]byte, error) {
	var s corev1.Secret
	err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bundle of %s: %w", ns, err)
	}
	return s.Data[config.BundleKey], nil
}

// pushRunnable serves the push channel while this replica leads: it waits
// for the serving certificate, listens, labels its pod for the push
// Service, serves, and removes the label when it stops.
type pushRunnable struct {
	srv     *push.Server
	o       PushOptions
	certDir string
	client  client.Client
}

// NeedLeaderElection: the leader alone holds the acknowledgements the
// status reports.
func (p *pushRunnable) NeedLeaderElection() bool { return true }

func (p *pushRunnable) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("push")
	crt, key := filepath.Join(p.certDir, "tls.crt"), filepath.Join(p.certDir, "tls.key")
	// cert-controller writes the Secret after the pod starts, and the
	// kubelet projects it later still.
	for !exists(crt) || !exists(key) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	watcher, err := certwatcher.New(crt, key)
	if err != nil {
		return fmt.Errorf("push: certificate: %w", err)
	}
	go func() {
		if err := watcher.Start(ctx); err != nil {
			logger.Error(err, "certificate watcher stopped")
		}
	}()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.o.Addr)
	if err != nil {
		return fmt.Errorf("push: listen %s: %w", p.o.Addr, err)
	}
	if err := setPushLeader(ctx, p.client, p.o.Namespace, p.o.PodName, true); err != nil {
		ln.Close()
		return err
	}
	logger.Info("serving the push channel; this pod is labelled its leader", "address", p.o.Addr, "label", LabelPushLeader)
	err = p.srv.ServeListener(ctx, ln, &tls.Config{GetCertificate: watcher.GetCertificate, MinVersion: tls.VersionTLS12})
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if uerr := setPushLeader(stop, p.client, p.o.Namespace, p.o.PodName, false); uerr != nil {
		logger.Error(uerr, "removing the push leader label")
	}
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
