{{- define "rs.fullname" -}}
{{- if contains "runtime-service" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-runtime-service" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rs.labels" -}}
app.kubernetes.io/name: runtime-service
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rs.selector" -}}
app.kubernetes.io/name: runtime-service
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rs.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The Postgres password: the value, else the one an earlier install stored, else a new random one. Letters and
     digits only, so it goes into the DSN unescaped. */}}
{{- define "rs.pgPassword" -}}
{{- if .Values.postgres.password -}}
{{- .Values.postgres.password -}}
{{- else -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace (printf "%s-postgres" (include "rs.fullname" .)) -}}
{{- if and $s $s.data (index $s.data "password") -}}
{{- index $s.data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the service's certificate: the user's, else the one tls.yaml generates. */}}
{{- define "rs.tlsSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "rs.fullname" .)) -}}
{{- end -}}

{{- define "rs.httpScheme" -}}
{{- ternary "HTTPS" "HTTP" .Values.tls.enabled -}}
{{- end -}}
