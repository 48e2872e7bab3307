{{/*
Names and labels, after the Helm guide (helm create) and the OpenTelemetry collector chart.
*/}}

{{/* The chart name, for the app.kubernetes.io/name label. */}}
{{- define "clasper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: "<release>-<chart>", or "<release>" when it already contains the chart name. */}}
{{- define "clasper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The helm.sh/chart label. */}}
{{- define "clasper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that identify the release's pods; never the version, so selectors survive upgrades. */}}
{{- define "clasper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clasper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "clasper.labels" -}}
helm.sh/chart: {{ include "clasper.chart" . }}
{{ include "clasper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clasper
{{- end }}

{{/* Selector labels of one component. Call with (dict "root" $ "name" $name). */}}
{{- define "clasper.componentSelectorLabels" -}}
{{ include "clasper.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of an object that belongs to one component. Call with (dict "root" $ "name" $name). */}}
{{- define "clasper.componentLabels" -}}
{{ include "clasper.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Name of a component's objects (its Service name is the peer host name). Call with (dict "root" $ "name" $name). */}}
{{- define "clasper.componentFullname" -}}
{{- printf "%s-%s" (include "clasper.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret every secret variable comes from. */}}
{{- define "clasper.secretName" -}}
{{- default (include "clasper.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The ServiceAccount of the components. */}}
{{- define "clasper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clasper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "clasper.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Deep merge of two maps, as YAML: keys of .over win; maps merge key by key; lists and scalars
replace. Written out because sprig's merge and mergeOverwrite skip "empty" values, so a
component could not turn a default `true` into `false` or a `2` into `0`.
*/}}
{{- define "clasper.deepMerge" -}}
{{- $out := deepCopy .base }}
{{- range $key, $value := .over }}
{{- $baseValue := get $out $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $baseValue) }}
{{- $_ := set $out $key (include "clasper.deepMerge" (dict "base" $baseValue "over" $value) | fromYaml) }}
{{- else }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The enabled components, each `default` merged with its own settings, as a YAML map
name -> settings (with `name` set). Every per-component template ranges over this.
*/}}
{{- define "clasper.components" -}}
{{- $out := dict }}
{{- range $name, $component := .Values.components }}
{{- $merged := include "clasper.deepMerge" (dict "base" $.Values.default "over" $component) | fromYaml }}
{{- if $merged.enabled }}
{{- $_ := set $merged "name" $name }}
{{- $_ := set $out $name $merged }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The environment variable that holds a peer's URL: CLASPER_<PEER>_URL. */}}
{{- define "clasper.peerUrlEnv" -}}
{{- printf "CLASPER_%s_URL" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
Where a component reaches one peer: its Service while the peer is enabled, otherwise the peer's
`externalUrl` (a deployment elsewhere). A disabled peer without one fails the render, since the
caller would start without CLASPER_<PEER>_URL (the gateway refuses to start then). Call with
(dict "root" $ "components" $components "caller" $name "peer" $peer).
*/}}
{{- define "clasper.peerUrl" -}}
{{- with get .components .peer }}
{{- printf "http://%s:%v" (include "clasper.componentFullname" (dict "root" $.root "name" $.peer)) .port }}
{{- else }}
{{- $external := (get .root.Values.components .peer | default dict).externalUrl }}
{{- if not $external }}
{{- fail (printf "components.%s calls %s, which is disabled: set components.%s.externalUrl to where it runs" .caller .peer .peer) }}
{{- end }}
{{- $external }}
{{- end }}
{{- end }}

{{/* Pod and container security settings shared by the Deployments and the migration Job. Call with the merged component. */}}
{{- define "clasper.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .podSecurityContext | nindent 2 }}
{{- end }}

{{/* The writable /tmp every pod mounts (the root filesystem is read-only). */}}
{{- define "clasper.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
{{- end }}

{{- define "clasper.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
The source of a component's workspace volume, as YAML (empty when it has none): an existing
ConfigMap or an existing PersistentVolumeClaim, never written to. Call with the merged component.
*/}}
{{- define "clasper.workspaceVolume" -}}
{{- with .workspaceVolume }}
{{- if .configMap }}
configMap:
  name: {{ .configMap }}
  {{- with .items }}
  items:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- else if .claimName }}
persistentVolumeClaim:
  claimName: {{ .claimName }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/*
CLASPER_WORKSPACE for a component's workspace volume. A ConfigMap volume holds its files as
symbolic links into a hidden "..data" folder that the kubelet swaps on every update; the
workspace service does not follow links (so a workspace cannot reach outside itself), so it is
pointed at "..data", whose entries are the real files and folders. Call with the merged component.
*/}}
{{- define "clasper.workspacePath" -}}
{{- if .workspaceVolume.configMap }}
{{- printf "%s/..data" (trimSuffix "/" .workspaceVolume.mountPath) }}
{{- else }}
{{- .workspaceVolume.mountPath }}
{{- end }}
{{- end }}

{{/* One probe over HTTP on the component's port. Call with the probe settings. */}}
{{- define "clasper.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/* An env entry read from the release's Secret. Call with (dict "root" $ "name" $var "mode" "required|optional"). */}}
{{- define "clasper.secretEnvVar" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "clasper.secretName" .root }}
      key: {{ .name }}
      {{- if eq .mode "optional" }}
      optional: true
      {{- end }}
{{- end }}

{{/*
A NetworkPolicyEgressRule, as YAML, that lets a pod reach one URL: TCP to the URL's port (443
for https, 80 for http when it names none), to the given peers or, when there are none, to any
address. NetworkPolicies see addresses, not host names, so narrowing by host is left to `to`.
Call with (dict "url" $url "to" $peers).
*/}}
{{- define "clasper.urlEgressRule" -}}
{{- $u := urlParse .url }}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" }}
{{- if not $port }}
{{- $port = ternary "443" "80" (eq $u.scheme "https") }}
{{- end }}
{{- $rule := dict "ports" (list (dict "port" (int $port) "protocol" "TCP")) }}
{{- with .to }}
{{- $_ := set $rule "to" . }}
{{- end }}
{{- toYaml $rule }}
{{- end }}
