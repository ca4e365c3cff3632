package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// Condition reasons set by the controller (translate adds its own for
// Accepted=False).
const (
	ReasonValid = "Valid"
	// ReasonAPIKeysExcluded: Accepted=True, but the keys of some selected
	// Secrets were left out because they claim scopes outside
	// spec.authentication.apiKeys.allowedScopes (a Warning event).
	ReasonAPIKeysExcluded    = "APIKeysExcluded"
	ReasonRendered           = "Rendered"
	ReasonLastGoodGeneration = "LastGoodGeneration"
	ReasonNotRendered        = "NotRendered"
	ReasonRenderFailed       = "RenderFailed"
	ReasonKeysFetched        = "KeysFetched"
	ReasonNoJWTIssuers       = "NoJWTIssuers"
	ReasonRefreshFailed      = "RefreshFailed"
	ReasonFetchFailed        = "FetchFailed"
	ReasonKeysPending        = "KeysPending"
	// ReasonAddressNotAllowed: the controller's fetch policy refused an
	// address an issuer's URLs resolved or redirected to (--fetch-allow-cidrs,
	// docs/fetch-policy.md).
	ReasonAddressNotAllowed = "AddressNotAllowed"
	// ReasonCAUnresolved: an issuer's certificateAuthority does not resolve,
	// so its keys are not fetched at all (see Accepted).
	ReasonCAUnresolved = "CAUnresolved"
	// ReasonIssuerLimitExceeded: the policy's issuers would take its
	// namespace past --max-issuers-per-namespace distinct issuers; it is
	// refused (Accepted and IssuersReady False), not rendered, and none of
	// its issuers is fetched (docs/tenancy.md).
	ReasonIssuerLimitExceeded = "IssuerLimitExceeded"
)

// conditions computes the three conditions of a policy; each is a small
// check returning its condition.
func conditions(pr *policyResult, renderErr error) []metav1.Condition {
	gen := pr.policy.Generation
	return []metav1.Condition{
		acceptedCondition(pr, gen),
		readyCondition(pr, renderErr, gen),
		issuersCondition(pr, gen),
	}
}

func acceptedCondition(pr *policyResult, gen int64) metav1.Condition {
	if pr.problem != nil {
		return metav1.Condition{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionFalse, ObservedGeneration: gen,
			Reason: pr.problem.Reason, Message: pr.problem.Message}
	}
	if pr.rendered != nil && len(pr.rendered.Excluded) > 0 {
		return metav1.Condition{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, ObservedGeneration: gen,
			Reason: ReasonAPIKeysExcluded, Message: "the policy is valid, but these API-key Secrets are not accepted: they claim scopes outside spec.authentication.apiKeys.allowedScopes: " +
				strings.Join(pr.rendered.Excluded, ", ")}
	}
	return metav1.Condition{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, ObservedGeneration: gen,
		Reason: ReasonValid, Message: "the policy is valid, its references resolve and its Rego compiles"}
}

func readyCondition(pr *policyResult, renderErr error, gen int64) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: gen}
	switch {
	case renderErr != nil:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonRenderFailed
		c.Message = "the namespace's bundle could not be rendered: " + renderErr.Error()
	case pr.rendered != nil && !pr.stale:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonRendered
		c.Message = fmt.Sprintf("generation %d is rendered into Secret %s for the sidecars", gen, config.BundleSecret)
	case pr.rendered != nil:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonLastGoodGeneration
		c.Message = fmt.Sprintf("generation %d was rejected (see Accepted); sidecars keep enforcing generation %s", gen, pr.rendered.Policy.Version)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNotRendered
		c.Message = "the policy is not enforced: it was never accepted (see Accepted)"
	}
	return c
}

func issuersCondition(pr *policyResult, gen int64) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionIssuersReady, ObservedGeneration: gen}
	if len(pr.issuers) == 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonNoJWTIssuers, "the policy trusts no JWT issuer"
		return c
	}
	keys, withKeys := 0, 0
	for _, is := range pr.issuers {
		keys += int(is.Keys)
		if is.Keys > 0 {
			withKeys++
		}
	}
	switch {
	case pr.overLimit != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonIssuerLimitExceeded, pr.overLimit
	case pr.caErr != "":
		c.Status, c.Reason = metav1.ConditionFalse, ReasonCAUnresolved
		c.Message = "keys are not fetched while the issuer's CA bundle does not resolve: " + pr.caErr
	case pr.pending != "":
		c.Status, c.Reason = metav1.ConditionFalse, ReasonKeysPending
		c.Message = "the first key fetch of " + pr.pending + " has not ended; the policy is rendered again when it does"
		if pr.queued {
			c.Message = "the first key fetch of " + pr.pending + " is queued behind other fetches of the namespace (--max-concurrent-fetches-per-namespace); the policy is rendered again when it has ended"
		}
	case pr.issuerErr == "":
		c.Status, c.Reason = metav1.ConditionTrue, ReasonKeysFetched
		c.Message = fmt.Sprintf("%d issuer(s), %d key(s) shipped inline to the sidecars", len(pr.issuers), keys)
	case pr.issuerNotAllowed:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonAddressNotAllowed
		shipped := "no keys are shipped inline"
		if withKeys == len(pr.issuers) {
			shipped = "the last good keys are still shipped"
		}
		c.Message = "the controller's fetch policy does not allow the issuer's address, " + shipped +
			" (an operator can allow it with --fetch-allow-cidrs, see docs/fetch-policy.md): issuer " + pr.issuerErr
	case withKeys == len(pr.issuers):
		c.Status, c.Reason = metav1.ConditionFalse, ReasonRefreshFailed
		c.Message = "refresh failed, the last good keys are still shipped: " + pr.issuerErr
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonFetchFailed
		c.Message = "no keys could be fetched; sidecars will try the issuer themselves: " + pr.issuerErr
	}
	return c
}

// updateStatus patches a policy's status once, and only when it changed,
// recording an event for every condition transition. The patch carries
// the resourceVersion read (see patchStatus); on a conflict (the coverage
// reconciler wrote the Enforced condition meanwhile) it reads the policy
// again and retries, so the conditions this reconciler owns are written
// now, not at a requeue that may decide to wait (a pending issuer).
func (r *Reconciler) updateStatus(ctx context.Context, pr *policyResult, renderErr error) error {
	if pr.policy.DeletionTimestamp != nil {
		return nil
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := r.patchStatus(ctx, pr, renderErr)
		if !apierrors.IsConflict(err) {
			return err
		}
		fresh := &v1alpha1.AuthPolicy{}
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(pr.policy), fresh); gerr != nil {
			return gerr
		}
		if fresh.UID != pr.policy.UID || fresh.Generation != pr.policy.Generation {
			return nil // replaced or changed: its own reconcile follows
		}
		pr.policy = fresh
		return err
	})
}

// patchStatus patches pr.policy's status with this reconciler's
// conditions when they changed.
func (r *Reconciler) patchStatus(ctx context.Context, pr *policyResult, renderErr error) error {
	p := pr.policy
	want := p.Status.DeepCopy()
	want.ObservedGeneration = p.Generation
	want.Issuers = pr.issuers
	want.Bundle = config.BundleSecret
	var transitions []metav1.Condition
	for _, c := range conditions(pr, renderErr) {
		old := meta.FindStatusCondition(want.Conditions, c.Type)
		if old == nil || old.Status != c.Status || old.Reason != c.Reason {
			transitions = append(transitions, c)
		}
		c.LastTransitionTime = metav1.NewTime(r.Now())
		meta.SetStatusCondition(&want.Conditions, c)
	}
	if equality.Semantic.DeepEqual(&p.Status, want) {
		return nil
	}
	// Under an optimistic lock: a merge patch replaces the conditions list,
	// and the coverage reconciler writes the Enforced condition into it.
	// A conflict requeues the namespace, which then starts from what that
	// reconciler wrote.
	patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
	p.Status = *want
	if err := r.Client.Status().Patch(ctx, p, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status of %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, c := range transitions {
		eventType := corev1.EventTypeNormal
		if c.Status == metav1.ConditionFalse || c.Reason == ReasonAPIKeysExcluded {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p, nil, eventType, c.Reason, c.Type+"="+string(c.Status), "%s", c.Message)
	}
	return nil
}
