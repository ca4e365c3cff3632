package faasnetes

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"

	corelisters "k8s.io/client-go/listers/core/v1"
)

// watchdogPort is the port faas-netes dials on the pod: hard-coded
// (pkg/k8s/proxy.go), whatever the Service or the pod declares.
const watchdogPort = 8080

// Resolver turns a function name from the path ("name" or "name.namespace")
// into the base URL the request is sent to (faas-provider's
// proxy.BaseURLResolver).
type Resolver interface {
	Resolve(name string) (url.URL, error)
}

// FunctionLookup is faas-netes' resolver (pkg/k8s/proxy.go FunctionLookup):
// it does not use the Service's ClusterIP. It reads the function's v1
// Endpoints (named like the Service) from an informer's lister and picks a
// random address of the first subset (ready addresses only: notReadyAddresses
// are never read), then dials that pod IP on 8080. The namespace is what
// follows the last "." of the name, else DefaultNamespace; kube-system is
// refused. faas-netes CE's informer watches only the function namespace, so
// a name in another namespace is not found.
type FunctionLookup struct {
	DefaultNamespace string
	Endpoints        corelisters.EndpointsLister
}

// Resolve implements Resolver.
func (l *FunctionLookup) Resolve(name string) (url.URL, error) {
	fn, ns := name, l.DefaultNamespace
	if i := strings.LastIndex(name, "."); i >= 0 {
		ns = name[i+1:]
		fn = strings.TrimSuffix(name, "."+ns)
	}
	if ns == "kube-system" {
		return url.URL{}, errors.New("namespace not allowed")
	}
	ep, err := l.Endpoints.Endpoints(ns).Get(fn)
	if err != nil {
		return url.URL{}, fmt.Errorf("error listing \"%s.%s\": %s", fn, ns, err.Error())
	}
	if len(ep.Subsets) == 0 {
		return url.URL{}, fmt.Errorf("no subsets available for \"%s.%s\"", fn, ns)
	}
	addrs := ep.Subsets[0].Addresses
	if len(addrs) == 0 {
		return url.URL{}, fmt.Errorf("no addresses in subset for \"%s.%s\"", fn, ns)
	}
	ip := addrs[rand.IntN(len(addrs))].IP
	u, err := url.Parse(fmt.Sprintf("http://%s:%d", ip, watchdogPort))
	if err != nil {
		return url.URL{}, err
	}
	return *u, nil
}
