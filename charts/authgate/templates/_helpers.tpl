{{/* Chart name. */}}
{{- define "authgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object: the release name, followed by "-authgate"
unless the release name already contains it. Kept to 40 characters so that
"<fullname>-controller-metrics" stays a valid Service name.
*/}}
{{- define "authgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "authgate.controllerName" -}}
{{ include "authgate.fullname" . }}-controller
{{- end }}

{{- define "authgate.webhookServiceName" -}}
{{ include "authgate.fullname" . }}-webhook
{{- end }}

{{- define "authgate.webhookConfigName" -}}
{{ include "authgate.fullname" . }}-injector
{{- end }}

{{- define "authgate.webhookSecretName" -}}
{{ include "authgate.fullname" . }}-webhook-tls
{{- end }}

{{- define "authgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authgate.controllerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "authgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: authgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the controller pods. */}}
{{- define "authgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* An image reference from {repository, tag, digest}. */}}
{{- define "authgate.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespaces the controller never injects into (the release namespace always). */}}
{{- define "authgate.excludeNamespaces" -}}
{{- append .Values.webhook.excludeNamespaces "$(POD_NAMESPACE)" | uniq | join "," }}
{{- end }}

{{/*
The webhooks' namespaceSelector expression that keeps kube-system, the
excluded namespaces and the release namespace out (the controller's own pods
must never wait for the webhook they serve).
*/}}
{{- define "authgate.excludeSystemNamespaces" -}}
{{- $ns := prepend .Values.webhook.excludeNamespaces "kube-system" | uniq }}
{{- $ns = without $ns .Release.Namespace -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
    {{- range $ns }}
    - {{ . }}
    {{- end }}
    - {{ .Release.Namespace }}
{{- end }}

{{/* Fields shared by both injector webhooks. */}}
{{- define "authgate.webhookCommon" -}}
admissionReviewVersions:
  - v1
clientConfig:
  service:
    name: {{ include "authgate.webhookServiceName" . }}
    namespace: {{ .Release.Namespace }}
    path: /inject-authgate
    port: 443
failurePolicy: {{ .Values.webhook.failurePolicy }}
matchPolicy: Equivalent
reinvocationPolicy: IfNeeded
rules:
  - apiGroups:
      - ""
    apiVersions:
      - v1
    operations:
      - CREATE
    resources:
      - pods
    scope: Namespaced
sideEffects: None
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
{{- end }}

{{/* "true" when the controller manages the webhook certificates itself. */}}
{{- define "authgate.manageCerts" -}}
{{- if and .Values.webhook.enabled (not .Values.certManager.enabled) }}true{{ end }}
{{- end }}

{{/* The Redis the chart deploys (redis.deploy). */}}
{{- define "authgate.redisName" -}}
{{ include "authgate.fullname" . }}-redis
{{- end }}

{{- define "authgate.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{/* The Redis address sidecars get: redis.address, else the deployed one. */}}
{{- define "authgate.redisAddress" -}}
{{- if .Values.redis.address }}
{{- .Values.redis.address }}
{{- else if .Values.redis.deploy.enabled }}
{{- printf "%s.%s.svc:6379" (include "authgate.redisName" .) .Release.Namespace }}
{{- end }}
{{- end }}
