package certs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/certs"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := func() certs.Options {
		return certs.Options{Namespace: "ns", SecretName: "s", ServiceName: "svc", WebhookConfigName: "w", CertDir: "/tmp/x"}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*certs.Options)
		want   string
	}{
		{"no namespace", func(o *certs.Options) { o.Namespace = "" }, "namespace is required"},
		{"no secret", func(o *certs.Options) { o.SecretName = "" }, "secret name is required"},
		{"no service", func(o *certs.Options) { o.ServiceName = "" }, "service name is required"},
		{"no webhook configuration", func(o *certs.Options) { o.WebhookConfigName = "" }, "webhook configuration name is required"},
		{"no cert dir", func(o *certs.Options) { o.CertDir = "" }, "cert dir is required"},
		{"renew before the whole validity", func(o *certs.Options) { o.CertValidity, o.RenewBefore = time.Hour, time.Hour }, "renew before (1h0m0s) must be less"},
		{"certificate outlives the CA", func(o *certs.Options) { o.CAValidity, o.CertValidity = time.Hour, 2*time.Hour }, "must not exceed the CA validity"},
		{"negative", func(o *certs.Options) { o.CheckInterval = -time.Second }, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := valid()
			tc.change(&o)
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
