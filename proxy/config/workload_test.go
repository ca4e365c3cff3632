package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestTrustedProxySet(t *testing.T) {
	t.Parallel()
	a, err := TrustedProxySet([]string{"10.1.2.3/8", "127.0.0.1", "::ffff:127.0.0.1", "10.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(a), "[10.0.0.0/8 127.0.0.1/32 ::1/128]"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "gateway", "10.0.0.1:80"} {
		if _, err := TrustedProxySet([]string{"127.0.0.1", bad}); err == nil || !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("%q: got %v, want an error naming entry 1", bad, err)
		}
	}
}
