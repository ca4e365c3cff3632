package injector

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/internal/pushapi"
)

// The push channel (controllers/push, proxy/push): the sidecar streams its
// namespace's bundle from the controller, authenticated by a projected
// ServiceAccount token of audience pushapi.Audience that only the sidecar
// mounts, and trusting the CA of the controller's serving certificate,
// which the injector passes in the environment.
const (
	// PushTokenVolumeName is the projected token volume.
	PushTokenVolumeName = "authgate-push-token" //nolint:gosec // a volume name, not a credential
	// PushTokenMountPath is where the sidecar mounts it.
	PushTokenMountPath = "/var/run/secrets/authgate.dev/push" //nolint:gosec // a path, not a credential
	// PushTokenKey is the token's file in it.
	PushTokenKey = "token"
	// PushTokenExpirationSeconds is the token's lifetime; the kubelet
	// renews it at 80% of that, and the sidecar reads the file at every
	// connect and acknowledgement.
	PushTokenExpirationSeconds int64 = 3600
	// EnvPushCA carries the PEM CA bundle into the sidecar.
	EnvPushCA = "AUTHGATE_PUSH_CA"
	// AnnotationPush "false" on a pod leaves its sidecar off the push
	// channel: it follows the mounted bundle only (a pod whose egress to
	// the controller is closed), and its policies report it as not
	// enforcing their generation until it restarts.
	AnnotationPush = "authgate.dev/push"
)

// Push is the push channel as the injector wires it.
type Push struct {
	// URL of the controller's push Service, e.g.
	// https://authgate-push.authgate-system.svc:8443. Empty: no push
	// channel (sidecars follow the mounted bundle only).
	URL string
	// CA is the PEM CA bundle that signed the push server's certificate
	// (the handler reads it from CAFile at every admission, so a renewed
	// CA reaches new pods).
	CA string
	// CAFile is where the handler reads CA (the webhook certificate
	// directory's ca.crt).
	CAFile string
	// ServerName is the name the sidecar verifies the server's
	// certificate for: the push server serves the webhook's certificate,
	// which names the webhook Service, not the push Service. Empty: the
	// URL's host.
	ServerName string
}

// validate checks URL (https, a host, no path); CA is checked at
// admission time by ReadCA.
func (p Push) validate() error {
	if p.URL == "" {
		return nil
	}
	u, err := url.Parse(p.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("push URL %q: want https://host[:port] with no path, query or user", p.URL)
	}
	if p.CAFile == "" {
		return errors.New("push CA file is required with a push URL")
	}
	return nil
}

// ReadCA reads CAFile and checks it holds at least one certificate.
func (p Push) ReadCA() (string, error) {
	data, err := os.ReadFile(p.CAFile)
	if err != nil {
		return "", fmt.Errorf("read push CA: %w", err)
	}
	rest, n := data, 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("push CA %s: %w", p.CAFile, err)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("push CA %s holds no certificate", p.CAFile)
	}
	return string(data), nil
}

// enabled says whether pods get the push channel: a URL and a CA.
func (p Push) enabled() bool { return p.URL != "" && p.CA != "" }

// pushArgs are the sidecar's push flags (none when the channel is off).
func pushArgs(p Push) []string {
	if !p.enabled() {
		return nil
	}
	args := []string{
		"--push-url", p.URL,
		"--push-ca", "$(" + EnvPushCA + ")",
		"--push-token-file", path.Join(PushTokenMountPath, PushTokenKey),
	}
	if p.ServerName != "" {
		args = append(args, "--push-server-name", p.ServerName)
	}
	return args
}

// addPush gives the sidecar c the CA, the token volume's mount and
// returns the volume (nil when the channel is off).
func addPush(c *corev1.Container, p Push) []corev1.Volume {
	if !p.enabled() {
		return nil
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: EnvPushCA, Value: p.CA})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: PushTokenVolumeName, MountPath: PushTokenMountPath, ReadOnly: true})
	return []corev1.Volume{{Name: PushTokenVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: pushapi.Audience, ExpirationSeconds: ptrTo(PushTokenExpirationSeconds), Path: PushTokenKey,
		}}},
		DefaultMode: ptrTo(int32(0o444)),
	}}}}
}
