package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/test/wait"
)

const (
	releaseNS   = "authgate-system"
	leaseName   = "authgate-controller.authgate.dev"
	controllerL = "app.kubernetes.io/component"
)

// TestWebhookAvailability: the injector webhook fails closed
// (failurePolicy Fail), so while no replica answers no opted-in pod can be
// created and Knative and OpenFaaS cannot scale up. The chart runs two
// replicas with a PodDisruptionBudget, every replica serving the webhook
// and one (the leader) reconciling. The test deletes the leader's pod and,
// until its replacement is Ready and leads or follows, keeps admitting
// opted-in pods (dry-run creates, which call the webhook for real):
// every one must come back injected.
func TestWebhookAvailability(t *testing.T) {
	dumpOnFailure(t, releaseNS)
	ctx := t.Context()
	sel := client.MatchingLabels{controllerL: "controller", "app.kubernetes.io/instance": "authgate"}
	pods := readyPods(t, releaseNS, sel, 2)
	var pdb policyv1.PodDisruptionBudget
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: releaseNS, Name: "authgate-controller"}, &pdb); err != nil {
		t.Fatalf("the chart's PodDisruptionBudget: %v", err)
	}
	leader := leaderPod(t)
	var victim *corev1.Pod
	for i := range pods {
		if pods[i].Name == leader {
			victim = &pods[i]
		}
	}
	if victim == nil {
		t.Fatalf("leader %q is not one of the ready controller pods %v", leader, names(pods))
	}

	admit := injectorAnswers(ctx)
	var (
		mu             sync.Mutex
		admitted, fail int
		failures       []string
	)
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-tick.C:
			}
			err := admit()
			mu.Lock()
			if err != nil && loopCtx.Err() == nil {
				fail++
				if len(failures) < 5 {
					failures = append(failures, err.Error())
				}
			} else if err == nil {
				admitted++
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	if err := k8s.Delete(ctx, victim); err != nil {
		stop()
		t.Fatal(err)
	}
	// Until the old pod is gone, a new one is Ready, and a leader holds the
	// lease again.
	wait.ForNil(t, podReadyTimeout, func() error {
		var list corev1.PodList
		if err := k8s.List(ctx, &list, client.InNamespace(releaseNS), sel); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			p := &list.Items[i]
			if p.Name == victim.Name {
				return fmt.Errorf("pod %s still there (%s)", p.Name, podState(p))
			}
			if podReady(p) {
				ready++
			}
		}
		if ready < 2 {
			return fmt.Errorf("%d of 2 controller pods ready", ready)
		}
		if l := leaderPod(t); l == "" || l == victim.Name {
			return fmt.Errorf("lease held by %q", l)
		}
		return nil
	}, "the controller replica %s to be replaced", victim.Name)
	restart := time.Since(start)
	// Twenty more under the new pair: endpoints settle after readiness.
	mu.Lock()
	after := admitted + fail + 20
	mu.Unlock()
	wait.For(t, podReadyTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return admitted+fail >= after
	}, "20 more admissions after the replacement")
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("leader %s deleted: replaced in %.1fs; %d admissions injected, %d failed %v", victim.Name, restart.Seconds(), admitted, fail, failures)
	figs.add("webhook_replica_restart_failed_admissions", float64(fail), "admissions")
	figs.add("webhook_replica_restart_admissions", float64(admitted), "admissions")
	if fail > 0 {
		t.Errorf("%d of %d admissions failed while one replica restarted: %s", fail, fail+admitted, strings.Join(failures, "; "))
	}
	if admitted < 10 {
		t.Errorf("only %d admissions while the replica restarted: the test did not test", admitted)
	}
}

// leaderPod is the pod holding the controller's lease ("" if none).
func leaderPod(t *testing.T) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: releaseNS, Name: leaseName}, &l); err != nil {
		return ""
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	pod, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return pod
}

func names(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i := range pods {
		out[i] = pods[i].Name
	}
	return out
}
