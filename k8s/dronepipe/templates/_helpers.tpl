{{/* Names, labels and the per-service derived values every template shares. */}}

{{- define "dronepipe.ns" -}}{{ .Values.namespace.name }}{{- end -}}

{{/* dronepipe.name: "dronepipe-<service>"; call with (dict "name" $name) */}}
{{- define "dronepipe.name" -}}dronepipe-{{ .name }}{{- end -}}

{{- define "dronepipe.labels" -}}
app.kubernetes.io/name: dronepipe-{{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: dronepipe
app.kubernetes.io/component: {{ .name }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version }}
{{- end -}}

{{- define "dronepipe.selector" -}}
app.kubernetes.io/name: dronepipe-{{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "dronepipe.commonLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: dronepipe
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "dronepipe.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The most replicas a service can have: the autoscaler's maximum, else its replica count.
     A consumer group never exceeds the partition count. Call with (dict "root" $ "svc" $svc). */}}
{{- define "dronepipe.maxReplicas" -}}
{{- $svc := .svc -}}
{{- $n := int $svc.replicas -}}
{{- $as := $svc.autoscaling | default dict -}}
{{- if and $as.hpa $as.hpa.enabled -}}{{- $n = int $as.hpa.maxReplicas -}}{{- end -}}
{{- if and $as.keda $as.keda.enabled -}}{{- $n = int ($as.keda.maxReplicas | default .root.Values.partitions) -}}{{- end -}}
{{- if and $svc.group (gt $n (int .root.Values.partitions)) -}}{{- $n = int .root.Values.partitions -}}{{- end -}}
{{- $n -}}
{{- end -}}

{{/* True (non-empty) when an autoscaler owns the replica count. */}}
{{- define "dronepipe.autoscaled" -}}
{{- $as := .autoscaling | default dict -}}
{{- if or (and $as.hpa $as.hpa.enabled) (and $as.keda $as.keda.enabled) -}}true{{- end -}}
{{- end -}}

{{/* Secret files a service mounts, as a YAML list of {env, secret, key}: the variable that
     receives the file path, the Secret (or SecretProviderClass) name and the key (file name). */}}
{{- define "dronepipe.secretFiles" -}}
{{- $root := .root -}}{{- $svc := .svc -}}{{- $name := .name -}}
{{- $out := list -}}
{{- if has "mongodb" $svc.uses -}}
{{- $out = append $out (dict "env" "DP_MONGO_URI_FILE" "secret" $root.Values.mongodb.uriSecret.name "key" $root.Values.mongodb.uriSecret.key) -}}
{{- end -}}
{{- if has "redis" $svc.uses -}}
{{- $out = append $out (dict "env" "DP_REDIS_URL_FILE" "secret" $root.Values.redis.urlSecret.name "key" $root.Values.redis.urlSecret.key) -}}
{{- end -}}
{{- if $root.Values.kafka.sasl.enabled -}}
{{- $out = append $out (dict "env" "DP_KAFKA_SASL_PASSWORD_FILE" "secret" (printf "dronepipe-%s" $name) "key" "password") -}}
{{- if $root.Values.kafka.sasl.caSecret -}}
{{- $out = append $out (dict "env" "DP_KAFKA_PROP_ssl_ca_location" "secret" $root.Values.kafka.sasl.caSecret "key" "ca.crt") -}}
{{- end -}}
{{- end -}}
{{- $auth := $root.Values.auth -}}
{{- if and $svc.api $auth.enabled -}}
{{- if not (or $auth.apiKeysSecret.name $auth.jwks.secret) -}}
{{- fail "auth.enabled needs auth.apiKeysSecret.name or auth.jwks.secret (or set auth.enabled: false, which leaves the API open)" -}}
{{- end -}}
{{- if $auth.apiKeysSecret.name -}}
{{- $out = append $out (dict "env" "DP_AUTH_API_KEYS_FILE" "secret" $auth.apiKeysSecret.name "key" $auth.apiKeysSecret.key) -}}
{{- end -}}
{{- if $auth.jwks.secret -}}
{{- $out = append $out (dict "env" "DP_AUTH_JWKS_FILE" "secret" $auth.jwks.secret "key" $auth.jwks.key) -}}
{{- end -}}
{{- if and $svc.tracking $auth.trackTokenSecret.name -}}
{{- $out = append $out (dict "env" "DP_TRACK_TOKEN_SECRET_FILE" "secret" $auth.trackTokenSecret.name "key" $auth.trackTokenSecret.key) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Non-secret authentication settings of an API service (ConfigMap), as a dict. */}}
{{- define "dronepipe.authConfig" -}}
{{- $auth := .root.Values.auth -}}{{- $out := dict -}}
{{- if and .svc.api $auth.enabled $auth.jwks.secret -}}
{{- $_ := set $out "DP_AUTH_JWT_ISSUER" (required "auth.jwks.issuer is required with auth.jwks.secret" $auth.jwks.issuer) -}}
{{- $_ := set $out "DP_AUTH_JWT_AUDIENCE" (required "auth.jwks.audience is required with auth.jwks.secret" $auth.jwks.audience) -}}
{{- $_ := set $out "DP_AUTH_JWT_OWNER_CLAIM" $auth.jwks.ownerClaim -}}
{{- if $auth.jwks.adminClaim -}}
{{- $_ := set $out "DP_AUTH_JWT_ADMIN_CLAIM" $auth.jwks.adminClaim -}}
{{- $_ := set $out "DP_AUTH_JWT_ADMIN_VALUE" $auth.jwks.adminValue -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Quantity parsing for the quota: memory in Mi (accepts Mi, Gi), CPU in millicores. */}}
{{- define "dronepipe.mebibytes" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Gi" $q -}}{{- mul (trimSuffix "Gi" $q | int) 1024 -}}
{{- else if hasSuffix "Mi" $q -}}{{- trimSuffix "Mi" $q | int -}}
{{- else -}}{{- fail (printf "memory quantity %q: use Mi or Gi" $q) -}}{{- end -}}
{{- end -}}
{{- define "dronepipe.millicores" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}{{- trimSuffix "m" $q | int -}}
{{- else -}}{{- mul ($q | int) 1000 -}}{{- end -}}
{{- end -}}

{{/* A service's resources: its own, else the pod defaults. */}}
{{- define "dronepipe.resources" -}}
{{- toYaml (.svc.resources | default .root.Values.podDefaults.resources) -}}
{{- end -}}
