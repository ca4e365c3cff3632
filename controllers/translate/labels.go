package translate

// Labels by which referenced objects opt in to being read: the controller
// caches only Secrets and ConfigMaps that carry them, so it never holds
// unrelated secrets in memory, and translation's hints name them.
const (
	// LabelAPIKey marks a Secret holding an API key ("true").
	LabelAPIKey = "authgate.dev/api-key" //nolint:gosec // a label name, not a credential
	// LabelRole marks ConfigMaps the controller reads: RoleRego for Rego
	// sources, RoleCA for CA bundles (and the controller's RoleBundle for
	// the bundles it writes).
	LabelRole = "authgate.dev/role"
	// RoleRego is LabelRole's value on a Rego source ConfigMap.
	RoleRego = "rego"
	// RoleCA is LabelRole's value on a ConfigMap holding a CA bundle for
	// certificateAuthority.configMapKeyRef (kube-root-ca.crt needs none).
	RoleCA = "ca"
)
