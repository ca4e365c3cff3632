// Package controllers reconciles AuthPolicies into per-namespace proxy
// configuration bundles.
package controllers

// Labels that bound what the controller reads: it caches only Secrets and
// ConfigMaps that opt in, so it never holds unrelated secrets in memory.
const (
	// LabelAPIKey marks a Secret holding an API key ("true").
	LabelAPIKey = "authgate.dev/api-key" //nolint:gosec // a label name, not a credential
	// LabelRole marks ConfigMaps the controller reads: "rego" for Rego
	// sources, "bundle" for the bundles it writes.
	LabelRole = "authgate.dev/role"
	// RoleRego is LabelRole's value on a Rego source ConfigMap.
	RoleRego = "rego"
	// RoleBundle is LabelRole's value on a rendered bundle.
	RoleBundle = "bundle"
	// AnnotationBundleHash is the SHA-256 of the rendered config.
	AnnotationBundleHash = "authgate.dev/config-hash"
)
