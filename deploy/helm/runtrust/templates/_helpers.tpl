{{/* Names are <release>-runtrust-<part>, cut to the 63 characters an object name may have. */}}
{{- define "runtrust.fullname" -}}
{{- if contains "runtrust" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-runtrust" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "runtrust.controller.name" -}}{{ include "runtrust.fullname" . }}-controller{{- end -}}
{{- define "runtrust.sensor.name" -}}{{ include "runtrust.fullname" . }}-sensor{{- end -}}
{{- define "runtrust.auth.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "runtrust.fullname" .)) -}}
{{- end -}}

{{- define "runtrust.labels" -}}
app.kubernetes.io/name: runtrust
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "runtrust.selector" -}}
app.kubernetes.io/name: runtrust
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "runtrust.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The auth type in force: joinKey or token. Fails with what to set when the values say neither or both. A join
     key serves the controller and every sensor: each enrols as its own collector of the cluster. */}}
{{- define "runtrust.authType" -}}
{{- $a := .Values.auth -}}
{{- $n := 0 -}}
{{- if $a.joinKey }}{{ $n = add1 $n }}{{ end -}}
{{- if $a.token }}{{ $n = add1 $n }}{{ end -}}
{{- if $a.existingSecret }}{{ $n = add1 $n }}{{ end -}}
{{- if ne $n 1 -}}
{{- fail "auth: set exactly one of auth.joinKey, auth.token, auth.existingSecret (how the collectors authenticate to the runtime service)" -}}
{{- end -}}
{{- $t := "token" -}}
{{- if $a.joinKey }}{{ $t = "joinKey" }}{{ end -}}
{{- if $a.existingSecret -}}
{{- if not (has $a.existingSecretType (list "joinKey" "token")) -}}
{{- fail (printf "auth.existingSecretType: %q is not joinKey or token" $a.existingSecretType) -}}
{{- end -}}
{{- $t = $a.existingSecretType -}}
{{- end -}}
{{- $t -}}
{{- end -}}

{{/* k8s.cluster.uid: the value, else the kube-system namespace's uid at install time. A join key needs it. */}}
{{- define "runtrust.clusterUID" -}}
{{- if .Values.clusterUID -}}
{{- .Values.clusterUID -}}
{{- else -}}
{{- $ns := lookup "v1" "Namespace" "" "kube-system" -}}
{{- if $ns -}}{{- $ns.metadata.uid -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/* Fails, saying what to set, when a join key is used and the cluster uid is unknown: the controller and every
     sensor enrol under it. */}}
{{- define "runtrust.requireClusterUID" -}}
{{- if and (eq (include "runtrust.authType" .) "joinKey") (not (include "runtrust.clusterUID" .)) -}}
{{- fail "clusterUID: a join-key enrolment needs the cluster uid up front, and there is no cluster to look it up in (helm template?): set clusterUID to `kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`" -}}
{{- end -}}
{{- end -}}

{{/* Environment every collector gets: where and how to ship. */}}
{{- define "runtrust.commonEnv" -}}
{{- $auth := include "runtrust.authType" . -}}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: RUNTRUST_HEALTH_ENDPOINT
  value: "$(POD_IP):13133"
- name: RUNTRUST_CLUSTER_NAME
  value: {{ required "clusterName: required, the name this cluster's records carry (k8s.cluster.name)" .Values.clusterName | quote }}
- name: RUNTRUST_SERVICE_ENDPOINT
  value: {{ required "runtimeService.endpoint: required, the runtime service's gRPC host:port" .Values.runtimeService.endpoint | quote }}
- name: RUNTRUST_SERVICE_INSECURE
  value: {{ .Values.runtimeService.insecure | quote }}
{{- if .Values.runtimeService.caSecret }}
- name: RUNTRUST_SERVICE_CA_FILE
  value: /etc/runtrust/service-ca/ca.crt
{{- end }}
{{- if .Values.runtimeService.clientCertSecret }}
{{- if .Values.runtimeService.insecure }}
{{- fail "runtimeService.clientCertSecret: a client certificate needs TLS (runtimeService.insecure=false)" }}
{{- end }}
- name: RUNTRUST_SERVICE_CERT_FILE
  value: /etc/runtrust/service-client/tls.crt
- name: RUNTRUST_SERVICE_KEY_FILE
  value: /etc/runtrust/service-client/tls.key
{{- end }}
- name: RUNTRUST_QUEUE_DIR
  value: /var/lib/runtrust/queue
{{- if eq $auth "token" }}
- name: RUNTRUST_CLUSTER_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ include "runtrust.auth.secretName" . }}, key: token}
{{- else }}
- name: RUNTRUST_JOIN_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "runtrust.auth.secretName" . }}, key: join-key}
- name: RUNTRUST_CLUSTER_UID
  value: {{ include "runtrust.clusterUID" . | quote }}
{{- end }}
{{- if and .Values.sensor.enabled (eq $auth "token") }}
{{- /* One shared token is one collector to the service: the controller says impact, so the cluster's mode does
       not flip with each heartbeat. With a join key each collector reports what it runs (the controller
       integrity, each sensor impact) and the service derives the cluster's mode from its sensors. */}}
- name: RUNTRUST_MODE
  value: impact
{{- end }}
{{- if .Values.otlpBackend.enabled }}
- name: RUNTRUST_OTLP_BACKEND_ENDPOINT
  value: {{ required "otlpBackend.endpoint: required with otlpBackend.enabled" .Values.otlpBackend.endpoint | quote }}
{{- if .Values.otlpBackend.headersSecret }}
- name: RUNTRUST_OTLP_BACKEND_AUTHORIZATION
  valueFrom:
    secretKeyRef: {name: {{ .Values.otlpBackend.headersSecret }}, key: authorization}
{{- end }}
{{- end }}
{{- end -}}

{{/* The overlay merged over a shipped config (a second --config) when otlpBackend is on: the collector merges
     maps and replaces lists, so it adds the exporter and restates the pipeline's exporter list. */}}
{{- define "runtrust.otlpOverlay" -}}
exporters:
  otlp_grpc/backend:
    endpoint: ${env:RUNTRUST_OTLP_BACKEND_ENDPOINT}
    tls:
      insecure: {{ .Values.otlpBackend.insecure }}
{{- if .Values.otlpBackend.headersSecret }}
    headers:
      authorization: ${env:RUNTRUST_OTLP_BACKEND_AUTHORIZATION}
{{- end }}
    sending_queue:
      storage: file_storage
service:
  pipelines:
    logs:
      exporters: [runtime, otlp_grpc/backend]
{{- end -}}

{{/* The volumes of what the collectors verify the service with and present to it (mTLS). */}}
{{- define "runtrust.serviceCAVolume" -}}
{{- if .Values.runtimeService.caSecret }}
- name: service-ca
  secret: {secretName: {{ .Values.runtimeService.caSecret }}}
{{- end }}
{{- if .Values.runtimeService.clientCertSecret }}
- name: service-client
  secret: {secretName: {{ .Values.runtimeService.clientCertSecret }}}
{{- end }}
{{- end -}}

{{- define "runtrust.serviceCAMount" -}}
{{- if .Values.runtimeService.caSecret }}
- {name: service-ca, mountPath: /etc/runtrust/service-ca, readOnly: true}
{{- end }}
{{- if .Values.runtimeService.clientCertSecret }}
- {name: service-client, mountPath: /etc/runtrust/service-client, readOnly: true}
{{- end }}
{{- end -}}
