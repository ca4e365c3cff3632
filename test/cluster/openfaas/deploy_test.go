package openfaas_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/authgate/authgate/controllers/injector"
)

func manifests(t *testing.T) []runtime.Object {
	t.Helper()
	b, err := os.ReadFile("deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		out = append(out, obj)
	}
}

func TestDeployManifest(t *testing.T) {
	t.Parallel()
	var role *rbacv1.Role
	var gw *appsv1.Deployment
	var fnNS *corev1.Namespace
	for _, o := range manifests(t) {
		switch o := o.(type) {
		case *rbacv1.Role:
			role = o
		case *appsv1.Deployment:
			gw = o
		case *corev1.Namespace:
			if o.Name == "openfaas-fn" {
				fnNS = o
			}
		}
	}
	if role == nil || gw == nil || fnNS == nil {
		t.Fatalf("deploy.yaml lacks the Role, the gateway Deployment or the openfaas-fn Namespace")
	}
	if fnNS.Labels[injector.LabelInject] != injector.NamespaceEnabled {
		t.Errorf("openfaas-fn labels %v: want %s=%s", fnNS.Labels, injector.LabelInject, injector.NamespaceEnabled)
	}
	// What the provider calls (faasnetes.Provider and the informers of
	// cmd/gateway).
	for _, need := range []struct{ group, resource, verbs string }{
		{"apps", "deployments", "get list watch create update delete"},
		{"", "services", "get create update delete"},
		{"", "endpoints", "get list watch"},
	} {
		for _, verb := range strings.Fields(need.verbs) {
			if !allows(role, need.group, need.resource, verb) {
				t.Errorf("the Role does not allow %s %s.%s", verb, need.resource, need.group)
			}
		}
	}
	c := gw.Spec.Template.Spec.Containers[0]
	if c.Image != "dev.local/openfaas-repro/gateway:e2e" || c.ImagePullPolicy != corev1.PullIfNotPresent ||
		gw.Spec.Template.Spec.ServiceAccountName != role.Name {
		t.Errorf("gateway container %+v", c)
	}
	src, err := os.ReadFile("cmd/gateway/main.go")
	if err != nil {
		t.Fatal(err)
	}
	var defined []string
	for _, m := range regexp.MustCompile(`flag\.\w+Var\(&o\.\w+, "([a-z-]+)"`).FindAllSubmatch(src, -1) {
		defined = append(defined, string(m[1]))
	}
	for _, arg := range c.Command[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "-"), "=")
		if !slices.Contains(defined, name) {
			t.Errorf("the command passes %s, which cmd/gateway does not define (%v)", arg, defined)
		}
	}
}

func allows(role *rbacv1.Role, group, resource, verb string) bool {
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}
