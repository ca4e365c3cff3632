package injector_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/injector"
)

// With a Redis configured every sidecar gets it, with a key prefix of its
// own namespace (tenants never share buckets), and the namespace's Redis
// Secret mounted optional into the sidecar only.
func TestRedisWiring(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		redis    injector.Redis
		wantArgs []string // in order, as flag/value pairs
		noArgs   []string
		wantKeys []string // items of the Secret volume; nil: no volume
	}{
		{"off", injector.Redis{}, nil, []string{"--redis-address"}, nil},
		{"plain with a password", injector.Redis{Address: "redis.shared.svc:6379", Secret: "authgate-redis"},
			[]string{"--redis-address", "redis.shared.svc:6379", "--redis-key-prefix", "authgate:shop:", "--redis-password-file", "/etc/authgate-redis/password"},
			[]string{"--redis-tls", "--redis-ca-file"}, []string{"password"}},
		{"TLS with the CA in the Secret", injector.Redis{Address: "redis.shared.svc:6380", CAFromSecret: true, Secret: "r", Username: "authgate", Timeout: 10 * time.Millisecond, ServerName: "redis.internal"},
			[]string{"--redis-server-name", "redis.internal", "--redis-username", "authgate", "--redis-timeout", "10ms", "--redis-password-file", "/etc/authgate-redis/password", "--redis-ca-file", "/etc/authgate-redis/ca.crt"},
			nil, []string{"password", "ca.crt"}},
		{"TLS with the system roots", injector.Redis{Address: "redis.shared.svc:6380", TLS: true},
			[]string{"--redis-address", "redis.shared.svc:6380"}, []string{"--redis-ca-file", "--redis-password-file"}, nil},
		{"no Secret", injector.Redis{Address: "10.0.0.5:6379"}, []string{"--redis-address", "10.0.0.5:6379"}, []string{"--redis-password-file"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Redis = tt.redis
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			pod := plainPod()
			if changed, reason, err := injector.Mutate(pod, namespace("shop", "enabled"), cfg); err != nil || !changed {
				t.Fatalf("not injected: %v %s", err, reason)
			}
			sc := container(pod, injector.ContainerName)
			joined := " " + strings.Join(sc.Args, " ") + " "
			for i := 0; i+1 < len(tt.wantArgs); i += 2 {
				if !strings.Contains(joined, " "+tt.wantArgs[i]+" "+tt.wantArgs[i+1]+" ") {
					t.Errorf("args %v lack %s %s", sc.Args, tt.wantArgs[i], tt.wantArgs[i+1])
				}
			}
			if wantTLS := tt.redis.TLS || tt.redis.CAFromSecret; slices.Contains(sc.Args, "--redis-tls") != wantTLS {
				t.Errorf("args %v: --redis-tls present %v, want %v", sc.Args, !wantTLS, wantTLS)
			}
			for _, a := range tt.noArgs {
				if slices.Contains(sc.Args, a) {
					t.Errorf("args %v hold %s", sc.Args, a)
				}
			}
			if n := len(sc.Args); sc.Args[n-2] != "--log-level" {
				t.Errorf("--log-level is no longer last: %v", sc.Args)
			}
			var keys []string
			for _, v := range pod.Spec.Volumes {
				if v.Name == injector.RedisVolumeName {
					if v.Secret == nil || v.Secret.Optional == nil || !*v.Secret.Optional || v.Secret.SecretName != tt.redis.Secret {
						t.Fatalf("Redis volume %+v, want the optional Secret %s", v, tt.redis.Secret)
					}
					for _, it := range v.Secret.Items {
						keys = append(keys, it.Key)
					}
				}
			}
			if strings.Join(keys, ",") != strings.Join(tt.wantKeys, ",") {
				t.Fatalf("Secret items %v, want %v", keys, tt.wantKeys)
			}
			for _, c := range pod.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name == injector.RedisVolumeName && c.Name != injector.ContainerName {
						t.Errorf("container %s mounts the Redis Secret, want the sidecar only", c.Name)
					}
				}
			}
		})
	}
}

func TestRedisConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		redis injector.Redis
		ok    bool
	}{
		{injector.Redis{}, true},
		{injector.Redis{Address: "redis:6379"}, true},
		{injector.Redis{Address: "/run/redis.sock", Network: "unix"}, true},
		{injector.Redis{Address: "redis"}, false},
		{injector.Redis{Address: "redis:6379", Network: "udp"}, false},
		{injector.Redis{Address: "redis:6379", Timeout: 2 * time.Second}, false},
		{injector.Redis{Address: "redis:6379", Secret: "Not_A_Name"}, false},
	} {
		cfg := testConfig()
		cfg.Redis = tt.redis
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: got %v, want ok %v", tt.redis, err, tt.ok)
		}
	}
}
