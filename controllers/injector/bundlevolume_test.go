package injector_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/proxy/config"
)

// The bundle holds the namespace's API-key hashes: it is mounted from the
// Secret, never from a ConfigMap, into the sidecar only, and readable by
// the proxy's user (65532, not the owner of secret volume files when the
// pod sets no fsGroup).
func TestBundleVolumeIsASecret(t *testing.T) {
	t.Parallel()
	for name, pod := range map[string]*corev1.Pod{"knative": knativePod(), "openfaas": openFaaSPod(), "plain": plainPod()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pod := mutated(t, pod, namespace("shop", "enabled"))
			var vol *corev1.Volume
			for i := range pod.Spec.Volumes {
				v := &pod.Spec.Volumes[i]
				if v.ConfigMap != nil && v.ConfigMap.Name == config.BundleSecret {
					t.Fatalf("got a ConfigMap volume of %s, want the bundle from its Secret only", config.BundleSecret)
				}
				if v.Name == injector.ConfigVolumeName {
					vol = v
				}
			}
			if vol == nil || vol.Secret == nil || vol.Secret.SecretName != config.BundleSecret {
				t.Fatalf("got volume %+v, want a secret volume of %s", vol, config.BundleSecret)
			}
			s := vol.Secret
			if s.Optional == nil || !*s.Optional {
				t.Error("got a required bundle volume, want it optional (the proxy waits, not ready, until the bundle exists)")
			}
			if len(s.Items) != 1 || s.Items[0].Key != config.BundleKey || s.Items[0].Path != config.BundleKey {
				t.Errorf("got items %+v, want only %s", s.Items, config.BundleKey)
			}
			sc := container(pod, injector.ContainerName)
			if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.FSGroup == nil {
				// Files are root-owned: the proxy reads them as "other".
				if s.DefaultMode == nil || *s.DefaultMode&0o004 == 0 || *s.DefaultMode&0o222 != 0 {
					t.Errorf("got mode %v, want read-only and readable by others (the proxy runs as %d without an fsGroup)", s.DefaultMode, *sc.SecurityContext.RunAsUser)
				}
			}
			for _, c := range pod.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name != injector.ConfigVolumeName {
						continue
					}
					if c.Name != injector.ContainerName {
						t.Errorf("got the bundle mounted into container %s, want the sidecar only", c.Name)
					} else if m.MountPath != config.MountDir || !m.ReadOnly {
						t.Errorf("got mount %+v, want %s read-only", m, config.MountDir)
					}
				}
			}
		})
	}
}
