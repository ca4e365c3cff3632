package faasnetes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"

	"github.com/authgate/authgate/test/cluster/openfaas/internal/route"
)

// NameExpression is the characters of a function name in a route.
const NameExpression = "-a-zA-Z_0-9."

// Provider is the faas-netes provider API (faas-provider serve.go's routes
// with faas-netes' handlers).
type Provider struct {
	// Namespace is env function_namespace (default openfaas-fn): the only
	// namespace CE deploys to, lists or resolves in.
	Namespace string
	// Client creates, updates and deletes Deployments and Services.
	Client kubernetes.Interface
	// Deployments is the informer's lister (list, status, the CE count).
	Deployments appslisters.DeploymentLister
	// Resolver finds a function's endpoint (FunctionLookup in faas-netes).
	Resolver Resolver
	// Deploy is how Deployments are rendered.
	Deploy DeployConfig
	// ReadTimeout is env read_timeout: the function proxy's client timeout
	// (whole request, body included; 10s when 0).
	ReadTimeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost tune the proxy client (1024).
	MaxIdleConns, MaxIdleConnsPerHost int
	// Log receives the provider's lines; nil discards them.
	Log *log.Logger
}

// Handler returns the provider's routes.
func (p *Provider) Handler() http.Handler {
	if p.Log == nil {
		p.Log = log.New(io.Discard, "", 0)
	}
	rt := &route.Router{}
	rt.HandleFunc("/system/functions", p.list, http.MethodGet)
	rt.HandleFunc("/system/functions", p.deploy, http.MethodPost)
	rt.HandleFunc("/system/functions", p.delete, http.MethodDelete)
	rt.HandleFunc("/system/functions", p.update, http.MethodPut)
	rt.HandleFunc("/system/function/(?P<name>["+NameExpression+"]+)", p.status, http.MethodGet)
	proxy := newFunctionProxy(p.Resolver, p.ReadTimeout, p.MaxIdleConns, p.MaxIdleConnsPerHost, p.Log)
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)", proxy)
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)/", proxy)
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)/(?P<params>.*)", proxy)
	rt.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) },
		http.MethodGet, http.MethodHead)
	return rt
}

// readDeployment is the start of the deploy and update handlers.
func readDeployment(w http.ResponseWriter, r *http.Request, verb string) (FunctionDeployment, bool) {
	body, _ := io.ReadAll(r.Body)
	var req FunctionDeployment
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, fmt.Sprintf("%s unmarshal request: %s", verb, err.Error()), http.StatusBadRequest)
		return req, false
	}
	if err := validateDeployRequest(&req); err != nil {
		http.Error(w, fmt.Sprintf("validation failed: %s", err.Error()), http.StatusBadRequest)
		return req, false
	}
	return req, true
}

// deploy is pkg/handlers/deploy.go MakeDeployHandler: 202 once the
// Deployment and the Service are created. The CE image check (isAnonymous:
// only images an anonymous client can HEAD) is left out, and secrets are
// not reproduced.
func (p *Provider) deploy(w http.ResponseWriter, r *http.Request) {
	req, ok := readDeployment(w, r, "failed to")
	if !ok {
		return
	}
	if ns := req.Namespace; ns != "" && ns != p.Namespace {
		http.Error(w, fmt.Sprintf("namespace must be: %s", p.Namespace), http.StatusBadRequest)
		return
	}
	if len(req.Secrets) > 0 {
		http.Error(w, fmt.Sprintf("unable to fetch secrets: not reproduced (asked for %v)", req.Secrets), http.StatusBadRequest)
		return
	}
	d, err := MakeDeployment(req, p.Deploy)
	if err != nil {
		p.Log.Printf("failed create Deployment spec: %s", err)
		http.Error(w, fmt.Sprintf("failed create Deployment spec: %s", err.Error()), http.StatusBadRequest)
		return
	}
	count, err := p.count()
	if err != nil {
		http.Error(w, fmt.Sprintf("unable to count functions: %s", err.Error()), http.StatusInternalServerError)
		return
	}
	if count+1 > maxFunctions {
		http.Error(w, fmt.Sprintf("unable to create function, maximum: %d, visit https://openfaas.com/pricing to upgrade to OpenFaaS Standard",
			maxFunctions), http.StatusBadRequest)
		return
	}
	ctx := context.Background()
	if _, err := p.Client.AppsV1().Deployments(p.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		p.Log.Printf("unable create Deployment: %s", err)
		http.Error(w, fmt.Sprintf("unable create Deployment: %s", err.Error()), http.StatusInternalServerError)
		return
	}
	p.Log.Printf("Deployment created: %s.%s\n", req.Service, p.Namespace)
	svc, err := MakeService(req, p.Deploy)
	if err != nil {
		http.Error(w, fmt.Sprintf("failed create Service spec: %s", err.Error()), http.StatusBadRequest)
		return
	}
	if _, err := p.Client.CoreV1().Services(p.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		p.Log.Printf("failed create Service: %s", err)
		http.Error(w, fmt.Sprintf("failed create Service: %s", err.Error()), http.StatusBadRequest)
		return
	}
	p.Log.Printf("Service created: %s.%s\n", req.Service, p.Namespace)
	w.WriteHeader(http.StatusAccepted)
}

func (p *Provider) count() (int, error) {
	list, err := p.Deployments.Deployments(p.Namespace).List(functionsSelector())
	return len(list), err
}

func functionsSelector() labels.Selector {
	req, _ := labels.NewRequirement(LabelFunction, selection.Exists, nil)
	return labels.NewSelector().Add(*req)
}

// lookupNamespace is the handlers' ?namespace= check.
func (p *Provider) lookupNamespace(w http.ResponseWriter, r *http.Request) (string, bool) {
	ns := p.Namespace
	if v := r.URL.Query().Get("namespace"); v != "" {
		ns = v
	}
	if ns == "kube-system" {
		http.Error(w, "unable to list within the kube-system namespace", http.StatusUnauthorized)
		return "", false
	}
	if ns != p.Namespace {
		http.Error(w, fmt.Sprintf("namespace must be: %s", p.Namespace), http.StatusBadRequest)
		return "", false
	}
	return ns, true
}

// delete is pkg/handlers/delete.go: foreground deletion of the Deployment
// (only one labelled faas_function) and the Service; 202.
func (p *Provider) delete(w http.ResponseWriter, r *http.Request) {
	ns, ok := p.lookupNamespace(w, r)
	if !ok {
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req DeleteFunctionRequest
	if err := json.Unmarshal(body, &req); err != nil || req.FunctionName == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ctx := context.Background()
	d, err := p.Client.AppsV1().Deployments(ns).Get(ctx, req.FunctionName, metav1.GetOptions{})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if _, ok := d.Labels[LabelFunction]; !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("Not a function: " + req.FunctionName))
		return
	}
	fg := metav1.DeletePropagationForeground
	opts := metav1.DeleteOptions{PropagationPolicy: &fg}
	if err := p.Client.AppsV1().Deployments(ns).Delete(ctx, req.FunctionName, opts); err != nil {
		writeAPIError(w, err)
		return
	}
	if err := p.Client.CoreV1().Services(ns).Delete(ctx, req.FunctionName, opts); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func writeAPIError(w http.ResponseWriter, err error) {
	if apierrors.IsNotFound(err) {
		w.WriteHeader(http.StatusNotFound)
	} else {
		w.WriteHeader(http.StatusInternalServerError)
	}
	_, _ = w.Write([]byte(err.Error()))
}

// list is pkg/handlers/reader.go: every Deployment labelled faas_function
// in the namespace, from the lister.
func (p *Provider) list(w http.ResponseWriter, r *http.Request) {
	ns, ok := p.lookupNamespace(w, r)
	if !ok {
		return
	}
	items, err := p.Deployments.Deployments(ns).List(functionsSelector())
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(err.Error()))
		return
	}
	out := []FunctionStatus{}
	for _, d := range items {
		out = append(out, AsFunctionStatus(d))
	}
	writeJSON(w, out)
}

// status is pkg/handlers/replica_reader.go: one function, 404 with no body
// when absent. The gateway reads it to decide whether a function exists.
func (p *Provider) status(w http.ResponseWriter, r *http.Request) {
	name := route.Var(r, "name")
	ns := p.Namespace
	if v := r.URL.Query().Get("namespace"); v != "" {
		ns = v
	}
	if ns != p.Namespace {
		http.Error(w, fmt.Sprintf("namespace must be: %s", p.Namespace), http.StatusBadRequest)
		return
	}
	d, err := p.Deployments.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		p.Log.Printf("Unable to fetch service: %s", name)
		http.Error(w, fmt.Sprintf("Unable to fetch service: %s", name), http.StatusInternalServerError)
		return
	}
	writeJSON(w, AsFunctionStatus(d))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "Failed to marshal functions", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// AsFunctionStatus is pkg/k8s/function_status.go: a Deployment as a
// FunctionStatus.
func AsFunctionStatus(d *appsv1.Deployment) FunctionStatus {
	var replicas uint64
	if d.Spec.Replicas != nil {
		replicas = uint64(*d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	lbls, annotations := d.Spec.Template.Labels, d.Spec.Template.Annotations
	fs := FunctionStatus{
		Name: d.Name, Replicas: replicas, Image: c.Image, AvailableReplicas: uint64(d.Status.AvailableReplicas),
		Labels: &lbls, Annotations: &annotations, Namespace: d.Namespace, CreatedAt: d.CreationTimestamp.Time,
	}
	req := &FunctionResources{Memory: c.Resources.Requests.Memory().String(), CPU: c.Resources.Requests.Cpu().String()}
	lim := &FunctionResources{Memory: c.Resources.Limits.Memory().String(), CPU: c.Resources.Limits.Cpu().String()}
	if req.CPU != "0" || req.Memory != "0" {
		fs.Requests = req
	}
	if lim.CPU != "0" || lim.Memory != "0" {
		fs.Limits = lim
	}
	for _, e := range c.Env {
		if e.Name == envProcessName {
			fs.EnvProcess = e.Value
		}
	}
	return fs
}
