package config

// Where a sidecar's configuration lives, defined once for the controller
// that writes it, the injector that mounts it and the proxy that reads it:
// the controller renders each namespace's ProxyConfig into the ConfigMap
// BundleConfigMap under the key BundleKey, the injector mounts that
// ConfigMap at MountDir, and authgate-proxy reads DefaultPath unless
// --config says otherwise.
const (
	// BundleConfigMap is the name of a namespace's bundle ConfigMap.
	BundleConfigMap = "authgate-proxy-config"
	// BundleKey is the ConfigMap data key holding the ProxyConfig YAML.
	BundleKey = "config.yaml"
	// MountDir is where the injector mounts the bundle in the sidecar.
	MountDir = "/etc/authgate"
	// DefaultPath is the proxy's default --config: the mounted bundle.
	DefaultPath = MountDir + "/" + BundleKey
)
