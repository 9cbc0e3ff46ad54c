{{- define "berth.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "berth.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The values' rules, checked before anything renders. */}}
{{- define "berth.validate" -}}
{{- if not (has .Values.mode (list "single" "scaled")) -}}
{{- fail (printf "mode: %q: use single (SQLite on a volume, one replica) or scaled (PostgreSQL and S3)" .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "single") (gt (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount > 1 needs mode: scaled (PostgreSQL and S3): SQLite on one volume serves one replica" -}}
{{- end -}}
{{- if eq .Values.mode "scaled" -}}
{{- if not .Values.scaled.databaseSecret.name -}}{{- fail "mode scaled: scaled.databaseSecret.name (the postgres:// DSN) is required" -}}{{- end -}}
{{- if not .Values.scaled.storage -}}{{- fail "mode scaled: scaled.storage (s3://BUCKET?endpoint=…) is required" -}}{{- end -}}
{{- if not .Values.scaled.s3CredentialsSecret.name -}}{{- fail "mode scaled: scaled.s3CredentialsSecret.name is required" -}}{{- end -}}
{{- if not .Values.scaled.keyEncryptionKeySecret.name -}}{{- fail "mode scaled: scaled.keyEncryptionKeySecret.name (the same key on every replica) is required" -}}{{- end -}}
{{- end -}}
{{- if or (hasKey .Values.config "listen") (hasKey .Values.config "data_dir") -}}
{{- fail "config: listen and data_dir are set by the chart" -}}
{{- end -}}
{{- end -}}

{{/* The environment of berth in both modes. */}}
{{- define "berth.env" -}}
- name: BERTH_DATA_DIR
  value: /data
{{- with .Values.bootstrap.passwordSecret.name }}
- name: BERTH_BOOTSTRAP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.bootstrap.passwordSecret.key }}
{{- end }}
{{- if eq .Values.mode "scaled" }}
- name: BERTH_DATABASE
  valueFrom:
    secretKeyRef:
      name: {{ .Values.scaled.databaseSecret.name }}
      key: {{ .Values.scaled.databaseSecret.key }}
- name: BERTH_STORAGE
  value: {{ .Values.scaled.storage | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.scaled.s3CredentialsSecret.name }}
      key: {{ .Values.scaled.s3CredentialsSecret.accessKeyIDKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.scaled.s3CredentialsSecret.name }}
      key: {{ .Values.scaled.s3CredentialsSecret.secretAccessKeyKey }}
- name: BERTH_AUTH_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.scaled.keyEncryptionKeySecret.name }}
      key: {{ .Values.scaled.keyEncryptionKeySecret.key }}
{{- end }}
{{- end -}}
