package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LabelPushLeader marks the controller pod that serves the push channel:
// the leader, which alone holds the acknowledgements the AuthPolicy status
// reports. The push Service selects it, so sidecars reach the leader
// through the Service and follow it when the lease moves.
const LabelPushLeader = "authgate.dev/push-leader"

// setPushLeader adds (on) or removes the label with a merge patch of that
// label alone.
func setPushLeader(ctx context.Context, c client.Client, ns, pod string, on bool) error {
	var value any // null removes the label
	if on {
		value = "true"
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{LabelPushLeader: value}}})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod}}
	if err := c.Patch(ctx, p, client.RawPatch(types.MergePatchType, data)); err != nil {
		if !on && apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("label pod %s/%s %s: %w", ns, pod, LabelPushLeader, err)
	}
	return nil
}
