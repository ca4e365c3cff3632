// Package controllers reconciles AuthPolicies into per-namespace proxy
// configuration bundles.
package controllers

// What the controller marks its bundles with. The labels by which Secrets
// and ConfigMaps opt in to being read (translate.LabelAPIKey,
// translate.LabelRole) are defined once in translate, whose hints name
// them.
const (
	// RoleBundle is translate.LabelRole's value on a rendered bundle.
	RoleBundle = "bundle"
	// AnnotationBundleHash is the SHA-256 of the rendered config.
	AnnotationBundleHash = "authgate.dev/config-hash"
)
