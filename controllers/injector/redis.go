package injector

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Shared limits (docs/shared-limits.md): the sidecars of a policy with
// sharedLimits keep its buckets in Redis. The injector passes the Redis
// the chart names to every sidecar, with a key prefix of the pod's
// namespace, and mounts the namespace's Secret RedisSecretDefault (optional)
// holding the AUTH password and, with TLS, the CA.
const (
	// RedisVolumeName mounts the Redis Secret into the sidecar only.
	RedisVolumeName = "authgate-redis"
	// RedisMountPath is where.
	RedisMountPath = "/etc/authgate-redis"
	// RedisSecretDefault is the Secret's default name in each namespace.
	RedisSecretDefault = "authgate-redis" //nolint:gosec // a Secret name, not a credential
	// RedisPasswordKey holds the AUTH password.
	RedisPasswordKey = "password"
	// RedisCAKey holds the PEM CA of Redis's certificate.
	RedisCAKey = "ca.crt"
)

// Redis is the Redis of shared limits as the injector wires it.
type Redis struct {
	// Address is host:port (or a socket path with Network unix); empty:
	// sidecars get no Redis, and policies with sharedLimits act as their
	// onUnavailable says.
	Address string
	// Network is tcp (default) or unix.
	Network string
	// TLS connects with TLS; CAFromSecret verifies Redis's certificate
	// against the Secret's ca.crt instead of the system roots.
	TLS          bool
	CAFromSecret bool
	// ServerName is the name Redis's certificate is verified for (default:
	// the address's host).
	ServerName string
	// Username is the ACL user (AUTH username).
	Username string
	// Timeout bounds each call of a sidecar (0: the proxy's default, 5ms).
	Timeout time.Duration
	// Secret names the Secret in each function namespace with the password
	// (and the CA); mounted optional, so a namespace without it gets a
	// sidecar that connects without AUTH.
	Secret string
}

func (r *Redis) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.Address, "injector-redis-address", "", "Redis of shared limits passed to every sidecar (host:port); empty: none")
	fs.StringVar(&r.Network, "injector-redis-network", "tcp", "tcp or unix")
	fs.BoolVar(&r.TLS, "injector-redis-tls", false, "sidecars connect to Redis with TLS")
	fs.BoolVar(&r.CAFromSecret, "injector-redis-ca-from-secret", false, "verify Redis's certificate against ca.crt of the namespace's Redis Secret (implies --injector-redis-tls)")
	fs.StringVar(&r.ServerName, "injector-redis-server-name", "", "name Redis's certificate is verified for (default: the address's host)")
	fs.StringVar(&r.Username, "injector-redis-username", "", "Redis ACL user of the sidecars")
	fs.DurationVar(&r.Timeout, "injector-redis-timeout", 0, "longest wait of a sidecar for one Redis call (default the proxy's, 5ms)")
	fs.StringVar(&r.Secret, "injector-redis-secret", RedisSecretDefault, "Secret in each function namespace holding the Redis password (key password) and CA (key ca.crt); mounted optional into the sidecar only")
}

func (r Redis) validate() error {
	if r.Address == "" {
		return nil
	}
	var errs []error
	switch r.Network {
	case "", "tcp":
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			errs = append(errs, fmt.Errorf("address %q: want host:port: %w", r.Address, err))
		}
	case "unix":
	default:
		errs = append(errs, fmt.Errorf("network %q: want tcp or unix", r.Network))
	}
	if r.Timeout < 0 || r.Timeout > time.Second {
		errs = append(errs, fmt.Errorf("timeout %s: must be between 0 (the proxy's default) and 1s", r.Timeout))
	}
	if r.Secret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(r.Secret) {
			errs = append(errs, fmt.Errorf("secret %q: %s", r.Secret, msg))
		}
	}
	return errors.Join(errs...)
}

// redisArgs are the sidecar's Redis flags (none when no Redis is
// configured), with the key prefix of the pod's namespace.
func redisArgs(r Redis, namespace string) []string {
	if r.Address == "" {
		return nil
	}
	args := []string{"--redis-address", r.Address, "--redis-key-prefix", "authgate:" + namespace + ":"}
	if r.Network != "" && r.Network != "tcp" {
		args = append(args, "--redis-network", r.Network)
	}
	if r.TLS || r.CAFromSecret {
		args = append(args, "--redis-tls")
	}
	if r.ServerName != "" {
		args = append(args, "--redis-server-name", r.ServerName)
	}
	if r.Username != "" {
		args = append(args, "--redis-username", r.Username)
	}
	if r.Timeout > 0 {
		args = append(args, "--redis-timeout", r.Timeout.String())
	}
	if r.Secret != "" {
		args = append(args, "--redis-password-file", path.Join(RedisMountPath, RedisPasswordKey))
		if r.CAFromSecret {
			args = append(args, "--redis-ca-file", path.Join(RedisMountPath, RedisCAKey))
		}
	}
	return args
}

// mountsRedisSecret says whether the sidecar mounts the Redis Secret.
func (r Redis) mountsRedisSecret() bool { return r.Address != "" && r.Secret != "" }

// redisVolumes is the namespace's Redis Secret (optional), when mounted.
func redisVolumes(r Redis) []corev1.Volume {
	if !r.mountsRedisSecret() {
		return nil
	}
	v := secretVolume(RedisVolumeName, r.Secret, RedisPasswordKey)
	if r.CAFromSecret {
		v.Secret.Items = append(v.Secret.Items, corev1.KeyToPath{Key: RedisCAKey, Path: RedisCAKey})
	}
	return []corev1.Volume{v}
}

// redisMounts mounts the Redis Secret into the sidecar only.
func redisMounts(r Redis) []corev1.VolumeMount {
	if !r.mountsRedisSecret() {
		return nil
	}
	return []corev1.VolumeMount{{Name: RedisVolumeName, MountPath: RedisMountPath, ReadOnly: true}}
}
