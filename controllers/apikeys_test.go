package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/test/wait"
)

const boundedPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: partners}
spec:
  targets: {openFaaSFunction: orders}
  authentication:
    apiKeys:
      selector: {matchLabels: {example.com/api-consumer: orders}}
      allowedScopes: [orders:read]
  routes:
    - {name: orders, methods: [GET], paths: ["/orders/**"], requireScopes: [orders:read]}
    - {name: admin, paths: ["/admin/**"], requireScopes: [admin]}
`

func consumerSecret(ns, name, key, scopes string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			translate.LabelAPIKey: "true", "example.com/api-consumer": "orders"}},
		StringData: map[string]string{"key": key, "subject": name, "scopes": scopes},
	}
}

// bundleKeys are the names of the keys the namespace's bundle accepts.
func bundleKeys(t *testing.T, ns string) []string {
	t.Helper()
	cfg, _ := bundleConfig(t, ns)
	if cfg == nil {
		return nil
	}
	var names []string
	for _, k := range cfg.APIKeys.Keys {
		names = append(names, k.Name)
	}
	return names
}

// TestAPIKeyRulesWithARealAPIServer: a labelled Secret anyone in the
// namespace could create, claiming a scope the policy does not allow, does
// not become a key (Accepted=True/APIKeysExcluded with a Warning event
// naming the Secret); a weak key is refused (SecretInvalid) without being
// quoted; the real partner's key keeps working throughout.
func TestAPIKeyRulesWithARealAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const partnerKey, intruderKey = "agk_bound_partner_key_000000001", "agk_bound_intruder_key_00000001"
	if err := k8s.Create(ctx, consumerSecret(ns, "partner", partnerKey, "orders:read")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policyFromYAML(t, ns, boundedPolicy)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonValid)
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)

	// The intruder's Secret claims admin, which a route requires but the
	// policy does not let API keys carry.
	if err := k8s.Create(ctx, consumerSecret(ns, "intruder", intruderKey, "orders:read admin")); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonAPIKeysExcluded)
	msg := condition(got, v1alpha1.ConditionAccepted).Message
	if !strings.Contains(msg, `Secret "intruder" (scopes "admin")`) || strings.Contains(msg, intruderKey) {
		t.Fatalf("got message %q, want it to name the Secret and the scope, never the key", msg)
	}
	if keys := bundleKeys(t, ns); !slices.Equal(keys, []string{ns + "/partner"}) {
		t.Fatalf("bundle keys %v, want only the partner's", keys)
	}
	wait.ForNil(t, settle, func() error {
		var evs eventsList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == controllers.ReasonAPIKeysExcluded && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "intruder") {
				return nil
			}
		}
		return fmt.Errorf("%d events, none a Warning %s naming the Secret", len(evs.Items), controllers.ReasonAPIKeysExcluded)
	}, "a warning event for the excluded Secret")

	// A weak key is refused outright; the last good generation (the
	// partner's key) stays enforced.
	if err := k8s.Create(ctx, consumerSecret(ns, "weak", "0123456789abcdef", "orders:read")); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionFalse, translate.ReasonSecretInvalid)
	if msg := condition(got, v1alpha1.ConditionAccepted).Message; !strings.Contains(msg, `Secret "weak": data "key" is too weak`) || strings.Contains(msg, "0123456789abcdef") {
		t.Fatalf("got message %q, want the weak Secret named and its key not quoted", msg)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)
	if keys := bundleKeys(t, ns); !slices.Equal(keys, []string{ns + "/partner"}) {
		t.Fatalf("bundle keys %v, want only the partner's", keys)
	}
}
