// Command manifests assembles Knative Serving's own install manifests, from
// the modules hack/cluster/knative pins, for the e2e cluster: the CRDs
// (Serving's, and the networking and caching ones Serving's controller
// needs) in one file, everything else in config/core in another, with the
// ko:// image references replaced by the locally built images.
//
//	go run ./manifests -out DIR [-image-prefix dev.local/knative/] [-tag e2e] \
//	    [-set configmap:key=value]...
//
// Module directories are found with `go list -m` in the current module.
// Left out, each for a stated reason (see skip): the HPAs and
// PodDisruptionBudgets (one replica each on one node) and the cert-manager
// Certificate (no cert-manager here; system-internal TLS is off by
// default). -set changes a ConfigMap's data key (e.g. faster scale to zero
// for the test); the manifests are otherwise applied as Knative ships them.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// skip: files left out, relative to the serving module, with the reason.
var skip = map[string]string{
	"config/core/deployments/activator-hpa.yaml": "HPA and PDB: one replica on one node",
	"config/core/deployments/webhook-hpa.yaml":   "HPA and PDB: one replica on one node",
	"config/core/300-knativecertificate.yaml":    "a cert-manager Certificate: no cert-manager here, system-internal TLS is off",
}

// koRef matches ko's image references to the serving commands.
var koRef = regexp.MustCompile(`^ko://knative\.dev/serving/cmd/([a-z-]+)$`)

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	out := flag.String("out", "", "directory to write crds.yaml and core.yaml into")
	prefix := flag.String("image-prefix", "dev.local/knative/", "image name prefix for the serving commands")
	tag := flag.String("tag", "e2e", "image tag")
	var sets setFlags
	flag.Var(&sets, "set", "configmap:key=value to set in a ConfigMap's data (repeatable)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "manifests: -out is required")
		os.Exit(2)
	}
	if err := run(*out, *prefix, *tag, sets); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(out, prefix, tag string, sets []string) error {
	overrides, err := parseSets(sets)
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	for _, m := range []string{"knative.dev/serving", "knative.dev/networking", "knative.dev/caching"} {
		d, err := moduleDir(m)
		if err != nil {
			return err
		}
		dirs[m] = d
	}
	var files []string
	for _, f := range []string{"certificate.yaml", "domain-claim.yaml", "ingress.yaml", "serverlessservice.yaml", "config-network.yaml"} {
		files = append(files, filepath.Join(dirs["knative.dev/networking"], "config", f))
	}
	files = append(files, filepath.Join(dirs["knative.dev/caching"], "config", "image.yaml"))
	core, err := yamlFiles(dirs["knative.dev/serving"], "config/core")
	if err != nil {
		return err
	}
	files = append(files, core...)

	// Namespaces first, then the rest in file order (networking's
	// config-network lives in Serving's namespace).
	var crds, namespaces, rest bytes.Buffer
	for _, f := range files {
		docs, err := readDocs(f)
		if err != nil {
			return err
		}
		for _, d := range docs {
			replaceImages(d, prefix, tag)
			if err := applySets(d, overrides); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			b, err := yaml.Marshal(d)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			w := &rest
			switch d["kind"] {
			case "CustomResourceDefinition":
				w = &crds
			case "Namespace":
				w = &namespaces
			}
			fmt.Fprintf(w, "---\n# from %s\n%s", sourceName(f, dirs), b)
		}
	}
	for name, left := range overrides {
		if len(left) > 0 {
			return fmt.Errorf("-set %s: no ConfigMap %q in the manifests", name, name)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "crds.yaml"), crds.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "core.yaml"), append(namespaces.Bytes(), rest.Bytes()...), 0o644)
}

// moduleDir is where the go command keeps module m's files.
func moduleDir(m string) (string, error) {
	cmd := exec.Command("go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", m)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", m, err)
	}
	d := strings.TrimSpace(string(b))
	if d == "" {
		return "", fmt.Errorf("go list -m %s: module not downloaded (go mod download %s)", m, m)
	}
	return d, nil
}

// yamlFiles lists the .yaml files under root/dir, sorted as kubectl apply -R
// would apply them (Knative's numeric prefixes order them), without skip.
func yamlFiles(root, dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if _, ok := skip[filepath.ToSlash(rel)]; ok {
			return nil
		}
		files = append(files, p)
		return nil
	})
	sort.Strings(files)
	for rel := range skip {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			return nil, fmt.Errorf("skip list names %s, which the module does not have: update the list", rel)
		}
	}
	return files, err
}

// readDocs splits a YAML file into its non-empty documents.
func readDocs(path string) ([]map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	for part := range strings.SplitSeq(string(raw), "\n---") {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(d) > 0 {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no documents", path)
	}
	return docs, nil
}

// replaceImages rewrites every ko:// reference to a serving command, at any
// depth (container images, config-deployment's queue-sidecar-image, the
// caching Image), to prefix+command+":"+tag.
func replaceImages(v any, prefix, tag string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok {
				if m := koRef.FindStringSubmatch(s); m != nil {
					t[k] = prefix + m[1] + ":" + tag
				}
				continue
			}
			replaceImages(e, prefix, tag)
		}
	case []any:
		for _, e := range t {
			replaceImages(e, prefix, tag)
		}
	}
}

// parseSets reads configmap:key=value flags into configmap -> key -> value.
func parseSets(sets []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, s := range sets {
		cm, kv, ok1 := strings.Cut(s, ":")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok1 || !ok2 || cm == "" || k == "" {
			return nil, fmt.Errorf("-set %q: want configmap:key=value", s)
		}
		if out[cm] == nil {
			out[cm] = map[string]string{}
		}
		out[cm][k] = v
	}
	return out, nil
}

// applySets sets the overrides for a ConfigMap document and removes them
// from overrides, so run can report any that matched nothing.
func applySets(d map[string]any, overrides map[string]map[string]string) error {
	if d["kind"] != "ConfigMap" {
		return nil
	}
	meta, _ := d["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	kv := overrides[name]
	if len(kv) == 0 {
		return nil
	}
	data, _ := d["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
		d["data"] = data
	}
	for k, v := range kv {
		data[k] = v
	}
	delete(overrides, name)
	return nil
}

// sourceName names a file by module and path, not by this machine's paths.
func sourceName(f string, dirs map[string]string) string {
	for m, d := range dirs {
		if rel, err := filepath.Rel(d, f); err == nil && !strings.HasPrefix(rel, "..") {
			return m + "/" + filepath.ToSlash(rel)
		}
	}
	return filepath.Base(f)
}
