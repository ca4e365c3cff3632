package translate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
)

// regoModules resolves spec.rego into one module named "<name>.rego". It
// also returns how to name the module's source in messages.
func regoModules(p *v1alpha1.AuthPolicy, cms map[string]*corev1.ConfigMap) (*config.Rego, string, *Problem) {
	r := p.Spec.Rego
	if r == nil {
		return nil, "", nil
	}
	var src, where string
	switch {
	case r.Inline != "" && r.ConfigMapRef != nil:
		return nil, "", problem(ReasonInvalidSpec, "spec.rego: set exactly one of inline or configMapRef")
	case r.ConfigMapRef != nil:
		ref := r.ConfigMapRef
		where = fmt.Sprintf("spec.rego.configMapRef (ConfigMap %q, key %q)", ref.Name, ref.Key)
		cm, ok := cms[ref.Name]
		if !ok || cm == nil || (cm.Namespace != "" && cm.Namespace != p.Namespace) {
			return nil, "", problem(ReasonConfigMapNotFound, "spec.rego.configMapRef: ConfigMap %q not found in namespace %s (%s)",
				ref.Name, p.Namespace, configMapHint)
		}
		if src, ok = cm.Data[ref.Key]; !ok {
			return nil, "", problem(ReasonRegoKeyNotFound, "spec.rego.configMapRef: ConfigMap %q has no key %q in its data (keys: %s)",
				ref.Name, ref.Key, strings.Join(dataKeys(cm), ", "))
		}
	case r.Inline != "":
		src, where = r.Inline, "spec.rego.inline"
	default:
		return nil, "", problem(ReasonInvalidSpec, "spec.rego: set inline or configMapRef")
	}
	out := &config.Rego{
		Modules: []config.RegoModule{{Name: p.Name + ".rego", Source: src}},
		Query:   r.Query,
	}
	if r.Timeout != nil {
		out.Timeout = config.D(r.Timeout.Duration)
	}
	return out, where, nil
}

func dataKeys(cm *corev1.ConfigMap) []string {
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return []string{"none"}
	}
	slices.Sort(keys)
	return keys
}

// compile builds the policy's Rego with the proxy's compiler. r must be
// defaulted (a positive timeout).
func compile(ctx context.Context, policy string, r *config.Rego, where string) *Problem {
	_, err := authz.Compile(ctx, policy, r)
	if err == nil {
		return nil
	}
	var cerr *authz.CompileError
	if !errors.As(err, &cerr) {
		return problem(ReasonRegoCompileError, "%s does not compile: %v", where, err)
	}
	module := ""
	if len(r.Modules) > 0 {
		module = r.Modules[0].Name
	}
	msgs := make([]string, 0, len(cerr.Details))
	for _, d := range cerr.Details {
		msgs = append(msgs, detail(d, module))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, cerr.Error())
	}
	return problem(ReasonRegoCompileError, "%s does not compile: %s", where, strings.Join(msgs, "; "))
}

// detail renders "line L, column C: message". The module name is generated,
// so it is shown only when the problem lies elsewhere (the library).
func detail(d authz.CompileDetail, module string) string {
	var b strings.Builder
	if d.Module != "" && d.Module != module {
		b.WriteString(d.Module + ": ")
	}
	if d.Row > 0 {
		b.WriteString(fmt.Sprintf("line %d", d.Row))
		if d.Col > 0 {
			b.WriteString(fmt.Sprintf(", column %d", d.Col))
		}
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}
