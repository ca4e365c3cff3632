package injector_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/test/testca"
)

// With the push channel on, the sidecar alone gets the projected token of
// the push audience, the CA and the flags; with no CA (not readable at
// admission) the pod is injected without the channel.
func TestPushChannelWiring(t *testing.T) {
	t.Parallel()
	ca := testca.New(t).PEM
	for _, tt := range []struct {
		name string
		push injector.Push
		want bool
	}{
		{"on", injector.Push{URL: "https://authgate-push.authgate-system.svc:8443", CA: ca, CAFile: "/certs/ca.crt"}, true},
		{"no CA read", injector.Push{URL: "https://authgate-push.authgate-system.svc:8443", CAFile: "/certs/ca.crt"}, false},
		{"off", injector.Push{}, false},
		{"pod opts out", injector.Push{URL: "https://authgate-push.authgate-system.svc:8443", CA: ca, CAFile: "/certs/ca.crt"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Push = tt.push
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			pod := plainPod()
			if tt.name == "pod opts out" {
				pod.Annotations[injector.AnnotationPush] = "false"
			}
			if changed, reason, err := injector.Mutate(pod, namespace("shop", "enabled"), cfg); err != nil || !changed {
				t.Fatalf("not injected: %v %s", err, reason)
			}
			sc := container(pod, injector.ContainerName)
			hasFlag := slices.Contains(sc.Args, "--push-url")
			var vol *corev1.Volume
			for i := range pod.Spec.Volumes {
				if pod.Spec.Volumes[i].Name == injector.PushTokenVolumeName {
					vol = &pod.Spec.Volumes[i]
				}
			}
			if hasFlag != tt.want || (vol != nil) != tt.want {
				t.Fatalf("got push flags %v and token volume %v, want %v", hasFlag, vol != nil, tt.want)
			}
			if !tt.want {
				return
			}
			src := vol.Projected.Sources
			if len(src) != 1 || src[0].ServiceAccountToken == nil || src[0].ServiceAccountToken.Audience != pushapi.Audience {
				t.Fatalf("got token projection %+v, want one ServiceAccount token of audience %s", src, pushapi.Audience)
			}
			env := ""
			for _, e := range sc.Env {
				if e.Name == injector.EnvPushCA {
					env = e.Value
				}
			}
			if env != ca || !slices.Contains(sc.Args, "$("+injector.EnvPushCA+")") {
				t.Fatalf("got CA env %q and args %v, want the CA passed through %s", env, sc.Args, injector.EnvPushCA)
			}
			for _, c := range pod.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name == injector.PushTokenVolumeName && c.Name != injector.ContainerName {
						t.Errorf("container %s mounts the push token, want the sidecar only", c.Name)
					}
				}
			}
		})
	}
}

func TestPushConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		push injector.Push
		ok   bool
	}{
		{injector.Push{}, true},
		{injector.Push{URL: "https://authgate-push.authgate-system.svc:8443", CAFile: "/c"}, true},
		{injector.Push{URL: "http://authgate-push:8443", CAFile: "/c"}, false},
		{injector.Push{URL: "https://authgate-push:8443/v1", CAFile: "/c"}, false},
		{injector.Push{URL: "https://authgate-push:8443"}, false},
	} {
		cfg := testConfig()
		cfg.Push = tt.push
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: got %v, want ok %v", tt.push, err, tt.ok)
		}
	}
}

func TestReadPushCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "bad.crt")
	if err := os.WriteFile(good, []byte(testca.New(t).PEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ca, err := (injector.Push{CAFile: good}).ReadCA(); err != nil || ca == "" {
		t.Fatalf("good CA: %v", err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "absent")} {
		if _, err := (injector.Push{CAFile: f}).ReadCA(); err == nil {
			t.Errorf("%s: accepted", f)
		}
	}
}
