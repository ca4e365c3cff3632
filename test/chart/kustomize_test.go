package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Labels only one of the two installs sets.
var toolLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

// normalize drops what legitimately differs between `helm template` and
// `kustomize build`: the tools' own labels, labels on the CRD (Helm does not
// template crds/), and the restriction of MutatingWebhookConfiguration rules
// to the chart's configuration by resourceNames (kustomize takes the
// generated ClusterRole as it is; TestChartRBAC checks the restriction).
func normalize(u *unstructured.Unstructured) *unstructured.Unstructured {
	u = u.DeepCopy()
	labels := u.GetLabels()
	for _, l := range toolLabels {
		delete(labels, l)
	}
	u.SetLabels(labels)
	if u.GetKind() == "CustomResourceDefinition" {
		u.SetLabels(nil)
	}
	if u.GetKind() == "ClusterRole" {
		rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
		grants := expandRules(rules, true)
		u.Object["rules"] = grants
	}
	return u
}

// expandRules flattens RBAC rules into sorted "group resource name verb"
// grants, so equal permissions compare equal however they are grouped.
func expandRules(rules []any, dropWebhookNames bool) []any {
	set := map[string]bool{}
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		groups, resources, names, verbs := strs(rule["apiGroups"]), strs(rule["resources"]), strs(rule["resourceNames"]), strs(rule["verbs"])
		if dropWebhookNames && contains(resources, "mutatingwebhookconfigurations") {
			names = nil
		}
		if len(names) == 0 {
			names = []string{"*"}
		}
		for _, g := range groups {
			for _, res := range resources {
				for _, n := range names {
					for _, v := range verbs {
						set[fmt.Sprintf("%q %s %s %s", g, res, n, v)] = true
					}
				}
			}
		}
	}
	var out []any
	for _, k := range sortedKeys(set) {
		out = append(out, k)
	}
	return out
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// config/default must declare the same objects as the chart's defaults
// (release authgate in authgate-system), plus the Namespace.
func TestKustomizeMatchesChart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v          variant
		prometheus bool
	}{{defaults, false}, {monitoring, true}} {
		t.Run(tc.v.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(repoRoot, "config", "default")
			if tc.prometheus {
				dir = defaultWithPrometheus(t)
			}
			built, err := run(kustomize, "build", dir)
			if err != nil {
				t.Fatal(err)
			}
			kust := byKey(t, parseObjects(t, built))
			chart := byKey(t, parseObjects(t, render(t, tc.v, "--include-crds")))
			ns := "Namespace " + releaseNamespace
			if _, ok := kust[ns]; !ok {
				t.Errorf("config/default has no %s", ns)
			}
			delete(kust, ns)
			for _, k := range sortedKeys(chart) {
				if _, ok := kust[k]; !ok {
					t.Errorf("the chart renders %s, config/default does not", k)
				}
			}
			for _, k := range sortedKeys(kust) {
				c, ok := chart[k]
				if !ok {
					t.Errorf("config/default declares %s, the chart does not", k)
					continue
				}
				got, want := normalize(kust[k]), normalize(c)
				if !reflect.DeepEqual(got.Object, want.Object) {
					t.Errorf("%s differs between config/ and the chart:\n%s", k, describeDiff("", want.Object, got.Object))
				}
			}
		})
	}
}

// defaultWithPrometheus writes config/default's kustomization with
// ../prometheus enabled (as its comment tells users to) into a temp dir.
func defaultWithPrometheus(t *testing.T) string {
	t.Helper()
	src := filepath.Join(repoRoot, "config", "default", "kustomization.yaml")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "# - ../prometheus", "- ../prometheus", 1)
	if text == string(data) {
		t.Fatal("config/default/kustomization.yaml has no commented-out ../prometheus line")
	}
	// kustomize refuses absolute paths to other kustomizations.
	dir := t.TempDir()
	config, err := filepath.Abs(filepath.Join(repoRoot, "config"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, config)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, "- ../", "- "+filepath.ToSlash(rel)+"/")
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// describeDiff lists the paths where two decoded YAML values differ.
func describeDiff(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		var b strings.Builder
		for _, k := range sortedKeys(keys) {
			b.WriteString(describeDiff(path+"."+k, w[k], g[k]))
		}
		return b.String()
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		var b strings.Builder
		for i := range w {
			b.WriteString(describeDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]))
		}
		return b.String()
	}
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("  %s: chart %v, config/ %v\n", path, want, got)
}

// The chart grants everything the controller's RBAC markers ask for
// (config/rbac/role.yaml), narrows its webhook configuration and Secret
// rights to its own objects, and drops certificate rights when cert-manager
// owns them.
func TestChartRBAC(t *testing.T) {
	t.Parallel()
	generated := parseObjects(t, mustRead(t, filepath.Join(repoRoot, "config", "rbac", "role.yaml")))
	for _, v := range []variant{defaults, certManager} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			objs := byKey(t, parseObjects(t, render(t, v)))
			clusterRole := objs["ClusterRole authgate-controller"]
			role := objs["Role "+releaseNamespace+"/authgate-controller"]
			certRole := objs["Role "+releaseNamespace+"/authgate-controller-webhook-certs"]
			if clusterRole == nil || role == nil {
				t.Fatalf("missing ClusterRole or Role authgate-controller in %v", sortedKeys(objs))
			}
			if (certRole == nil) != (v.name == certManager.name) {
				t.Fatalf("Role authgate-controller-webhook-certs rendered: %v, want %v", certRole != nil, v.name != certManager.name)
			}
			roles := []*unstructured.Unstructured{role}
			if certRole != nil {
				roles = append(roles, certRole)
			}
			clusterGrants := grantSet(clusterRole)
			nsGrants := grantSet(append([]*unstructured.Unstructured{clusterRole}, roles...)...)
			for _, g := range generated {
				granted := clusterGrants
				if g.GetKind() == "Role" {
					granted = nsGrants
				}
				rules, _, _ := unstructured.NestedSlice(g.Object, "rules")
				for _, want := range expandRules(rules, false) {
					w := want.(string)
					if v.name == certManager.name && certRight(g, w) {
						continue // checked below
					}
					if !grantedAny(granted, w) {
						t.Errorf("config/rbac/role.yaml %s grants %s; the chart does not", g.GetKind(), w)
					}
				}
			}
			if v.name == certManager.name {
				for g := range grantSet(roles...) {
					if strings.Contains(g, " secrets ") {
						t.Errorf("with cert-manager the chart's Roles still grant %s", g)
					}
				}
				for g := range clusterGrants {
					if strings.Contains(g, " mutatingwebhookconfigurations ") {
						t.Errorf("with cert-manager the chart's ClusterRole still grants %s", g)
					}
				}
			}
			for g := range clusterGrants {
				if strings.Contains(g, " mutatingwebhookconfigurations ") && !strings.Contains(g, " authgate-injector ") {
					t.Errorf("the chart grants %s on every MutatingWebhookConfiguration, want it restricted to authgate-injector", g)
				}
			}
			for g := range grantSet(roles...) {
				if strings.Contains(g, " secrets ") && !strings.Contains(g, " authgate-webhook-tls ") {
					t.Errorf("the chart's Roles grant %s, want Secret rights restricted to authgate-webhook-tls", g)
				}
			}
		})
	}
}

// Every permission is granted once: no grant of a Role or ClusterRole of
// the chart (both variants) or of config/default is also granted by
// another rule, of the same object or another (a grant on every name, or
// cluster-wide, covers the narrower ones).
func TestEachPermissionGrantedOnce(t *testing.T) {
	t.Parallel()
	kust, err := run(kustomize, "build", filepath.Join(repoRoot, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]*unstructured.Unstructured{
		"chart default":      parseObjects(t, render(t, defaults)),
		"chart cert-manager": parseObjects(t, render(t, certManager)),
		"config/default":     parseObjects(t, kust),
	}
	for name, objs := range sets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			type source struct{ object, grant string }
			seen := map[string][]source{} // "group resource verb" -> grants
			for _, o := range objs {
				if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
					continue
				}
				rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
				for _, r := range rules {
					for _, g := range expandRules([]any{r}, false) {
						f := strings.Fields(g.(string))
						k := f[0] + " " + f[1] + " " + f[3]
						seen[k] = append(seen[k], source{objectKey(o), g.(string)})
					}
				}
			}
			for k, srcs := range seen {
				for i, a := range srcs {
					for _, b := range srcs[i+1:] {
						an, bn := strings.Fields(a.grant)[2], strings.Fields(b.grant)[2]
						if an == bn || an == "*" || bn == "*" {
							t.Errorf("%s granted twice: %s by %s and %s by %s", k, a.grant, a.object, b.grant, b.object)
						}
					}
				}
			}
		})
	}
}

// certRight reports whether a generated grant only serves the controller's
// own webhook certificates (--manage-webhook-certs), which cert-manager
// replaces.
func certRight(obj *unstructured.Unstructured, grant string) bool {
	return strings.Contains(grant, " mutatingwebhookconfigurations ") ||
		(obj.GetKind() == "Role" && strings.Contains(grant, " secrets "))
}

// grantSet expands the rules of RBAC objects into a set of grants.
func grantSet(objs ...*unstructured.Unstructured) map[string]bool {
	set := map[string]bool{}
	for _, o := range objs {
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, g := range expandRules(rules, false) {
			set[g.(string)] = true
		}
	}
	return set
}

// grantedAny reports whether want ("group resource * verb") is granted, for
// all names or (when the chart narrowed it) for some names.
func grantedAny(granted map[string]bool, want string) bool {
	if granted[want] {
		return true
	}
	f := strings.Fields(want)
	for g := range granted {
		gf := strings.Fields(g)
		if gf[0] == f[0] && gf[1] == f[1] && gf[3] == f[3] {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// containerArgs returns the args of the Deployment's first container.
func containerArgs(t *testing.T, dep *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatalf("%s has no containers", objectKey(dep))
	}
	c, _ := containers[0].(map[string]any)
	args := strs(c["args"])
	sort.Strings(args)
	return args
}

// watchNamespaces: the ClusterRole keeps only the cluster-scoped rules
// (Namespaces for the injector, the chart's MutatingWebhookConfiguration),
// each watched namespace gets a Role with every namespaced grant of the
// generated ClusterRole, and nothing reads Secrets or ConfigMaps anywhere
// else (the release namespace: the certificate Secret, by name).
func TestChartRBACNamespaced(t *testing.T) {
	t.Parallel()
	generated := parseObjects(t, mustRead(t, filepath.Join(repoRoot, "config", "rbac", "role.yaml")))
	objs := byKey(t, parseObjects(t, render(t, watchNamespaces)))
	clusterRole := objs["ClusterRole authgate-controller"]
	if clusterRole == nil {
		t.Fatalf("missing ClusterRole in %v", sortedKeys(objs))
	}
	for g := range grantSet(clusterRole) {
		if !strings.Contains(g, " namespaces ") && !strings.Contains(g, " mutatingwebhookconfigurations authgate-injector ") {
			t.Errorf("the namespaced chart's ClusterRole grants %s, want only Namespaces and its webhook configuration", g)
		}
	}
	var wantNS []string
	for _, g := range generated {
		if g.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(g.Object, "rules")
		for _, w := range expandRules(rules, false) {
			if s := w.(string); !strings.Contains(s, " namespaces ") && !strings.Contains(s, " mutatingwebhookconfigurations ") {
				wantNS = append(wantNS, s)
			}
		}
	}
	if len(wantNS) == 0 {
		t.Fatal("the generated ClusterRole has no namespaced grants")
	}
	for _, ns := range []string{"team-a", "team-b"} {
		role, binding := objs["Role "+ns+"/authgate-controller-watch"], objs["RoleBinding "+ns+"/authgate-controller-watch"]
		if role == nil || binding == nil {
			t.Fatalf("missing Role or RoleBinding authgate-controller-watch in %s: %v", ns, sortedKeys(objs))
		}
		granted := grantSet(role)
		for _, w := range wantNS {
			if !grantedAny(granted, w) {
				t.Errorf("the Role in %s does not grant %s", ns, w)
			}
		}
	}
	for key, o := range objs {
		if o.GetKind() != "Role" {
			continue
		}
		if ns := o.GetNamespace(); ns != "team-a" && ns != "team-b" && ns != releaseNamespace {
			t.Errorf("got %s outside the watched and release namespaces", key)
		}
		if o.GetNamespace() == releaseNamespace {
			for g := range grantSet(o) {
				if (strings.Contains(g, " secrets ") && !strings.Contains(g, " authgate-webhook-tls ")) || strings.Contains(g, " configmaps ") {
					t.Errorf("%s grants %s in the release namespace", key, g)
				}
			}
		}
	}
	dep := objs["Deployment "+releaseNamespace+"/authgate-controller"]
	if args := fmt.Sprint(dep.Object["spec"]); !strings.Contains(args, "--watch-namespaces=team-a,team-b") {
		t.Error("the Deployment does not pass --watch-namespaces=team-a,team-b")
	}
}
