// Package controllers reconciles AuthPolicies into per-namespace proxy
// configuration bundles.
package controllers

import "github.com/authgate/authgate/proxy/config"

// What the controller marks its bundles with. The labels by which Secrets
// and ConfigMaps opt in to being read (translate.LabelAPIKey,
// translate.LabelRole) are defined once in translate, whose hints name
// them.
const (
	// RoleBundle is translate.LabelRole's value on a rendered bundle.
	RoleBundle = "bundle"
	// AnnotationBundleHash is the SHA-256 of the rendered config.
	AnnotationBundleHash = "authgate.dev/config-hash"
	// LabelManagedBy and ManagedBy mark what this controller wrote.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "authgate-controller"
	// LegacyBundleConfigMap is the ConfigMap that held the bundle before
	// it moved into the Secret config.BundleSecret. The controller deletes
	// the one it wrote (labelled RoleBundle and ManagedBy) once the Secret
	// is written: a ConfigMap is readable by the built-in view role, and
	// the bundle holds API-key hashes.
	LegacyBundleConfigMap = config.BundleSecret
)
