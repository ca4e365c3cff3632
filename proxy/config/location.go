package config

// Where a sidecar's configuration lives, defined once for the controller
// that writes it, the injector that mounts it and the proxy that reads it:
// the controller renders each namespace's ProxyConfig into the Secret
// BundleSecret under the key BundleKey, the injector mounts that Secret at
// MountDir, and authgate-proxy reads DefaultPath unless --config says
// otherwise.
//
// The bundle is a Secret, not a ConfigMap, because it holds the API-key
// hashes of the namespace: the built-in view ClusterRole (and anything
// else granted ConfigMap reads) must not read them.
const (
	// BundleSecret is the name of a namespace's bundle Secret (type
	// Opaque).
	BundleSecret = "authgate-proxy-config" //nolint:gosec // G101: a Secret's name, not a credential

	// BundleKey is the Secret data key holding the ProxyConfig YAML.
	BundleKey = "config.yaml"
	// MountDir is where the injector mounts the bundle in the sidecar.
	MountDir = "/etc/authgate"
	// DefaultPath is the proxy's default --config: the mounted bundle.
	DefaultPath = MountDir + "/" + BundleKey
)
