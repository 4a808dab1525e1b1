#!/usr/bin/env python3
"""Writes the operations-output redaction corpus: protect/tests/fixtures/ops/.

What an agent reads on real infrastructure, in the shapes that hide secrets from a
line-by-line reader, and operations text that only looks dangerous:

- secrets/NN-family.txt: command outputs, each family one shape (`kubectl get secret -o
  json`, `vault kv get`, `terraform show -json`, doppler tables, `.netrc`, `ps auxeww`, …);
  every secret in them is listed in secrets.json with the family and the cause that hides
  it (vocabulary, another line, escaped, table, flag, value shape);
- benign/NN-family.txt: operations text with no secret at all (env dumps, Helm checksums,
  notebooks, `.env.example` placeholders, help text, names of secrets, redacted listings).

Deterministic (seeded): running it again writes the same files. The protect test
`ops_corpus` redacts every file with the shipped rules and asserts no listed secret shows
and at most 2 changed lines per MB of the benign text. `--compare` runs detect-secrets (if
installed) on the same files and prints both tools' figures.

    python3 scripts/ops-corpus.py            # write the fixtures
    python3 scripts/ops-corpus.py --compare EXECKIT DETECT_SECRETS
"""

import base64
import json
import os
import random
import string
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "protect", "tests", "fixtures", "ops")
R = random.Random(20261126)

ALNUM = string.ascii_letters + string.digits
WORDS = ["orbit", "maple", "falcon", "harbor", "velvet", "quartz", "ember", "summit",
         "cobalt", "meadow", "lantern", "pepper", "willow", "copper", "rapid", "silver"]


def tok(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def hexs(n):
    return tok(n, "0123456789abcdef")


def human_password():
    """Passwords people choose: `Word.word99`, `Summer2024!`, `maple-Falcon-7`."""
    w1, w2 = R.sample(WORDS, 2)
    return R.choice([
        f"{w1.capitalize()}.{w2}{R.randint(10, 99)}",
        f"{w1.capitalize()}{R.randint(2019, 2026)}!",
        f"{w1}-{w2.capitalize()}-{R.randint(1, 9)}",
        f"{w1.capitalize()}#{w2}{R.randint(100, 999)}",
    ])


def machine_password(n=20):
    return tok(n, ALNUM + "!@#%^*-_+/")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def pem_body(lines=6):
    return [tok(64, ALNUM + "+/") for _ in range(lines)] + [tok(R.randint(20, 60), ALNUM + "+/") + "=="]


def pem(kind="RSA PRIVATE KEY", lines=6):
    return [f"-----BEGIN {kind}-----"] + pem_body(lines) + [f"-----END {kind}-----"]


class Corpus:
    def __init__(self):
        self.secret_files = []  # (name, text)
        self.secrets = []  # {file, value, family, cause}
        self.benign_files = []

    def secret(self, family, cause, value):
        self.current.append({"value": value, "family": family, "cause": cause})
        return value

    def add(self, name, fn, n):
        for i in range(n):
            self.current = []
            text = fn(self, name)
            fname = f"{len(self.secret_files):03d}-{name}.txt"
            self.secret_files.append((fname, text))
            for s in self.current:
                s["file"] = fname
                self.secrets.append(s)

    def benign(self, name, fn, n):
        for _ in range(n):
            self.benign_files.append((f"{len(self.benign_files):03d}-{name}.txt", fn()))


# ------------------------------------------------------------------ secret families


def kubectl_secret_yaml(c, f):
    pw, tk = human_password(), tok(32)
    annot = json.dumps({"apiVersion": "v1", "data": {"password": b64(pw), "api-token": b64(tk)},
                        "kind": "Secret", "metadata": {"annotations": {}, "name": "app-credentials",
                                                       "namespace": "prod"}, "type": "Opaque"},
                       separators=(",", ":"))
    c.secret(f, "another-line", b64(pw))
    c.secret(f, "another-line", b64(tk))
    return f"""apiVersion: v1
data:
  api-token: {b64(tk)}
  password: {b64(pw)}
  username: {b64('app')}
kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {annot}
  creationTimestamp: "2026-10-02T09:14:51Z"
  name: app-credentials
  namespace: prod
  resourceVersion: "{R.randint(100000, 999999)}"
  uid: {hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}
type: Opaque
"""


def kubectl_secret_json(c, f):
    pw, key = machine_password(), tok(40, ALNUM + "+/")
    c.secret(f, "another-line", b64(pw))
    c.secret(f, "another-line", b64(key))
    doc = {"apiVersion": "v1", "items": [{
        "apiVersion": "v1", "data": {"DB_PASSWORD": b64(pw), "STORAGE_KEY": b64(key)},
        "kind": "Secret", "metadata": {"name": "db", "namespace": "default"}, "type": "Opaque"}],
        "kind": "List", "metadata": {"resourceVersion": ""}}
    return json.dumps(doc, indent=4) + "\n"


def kubectl_deploy_env_json(c, f):
    pw, tk = human_password(), tok(36)
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", tk)
    env = [{"name": "LOG_LEVEL", "value": "info"},
           {"name": "DB_PASSWORD", "value": pw},
           {"name": "PORT", "value": "8080"},
           {"name": "SLACK_BOT_TOKEN", "value": tk}]
    doc = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "registry.example.com/api:1.4.2", "env": env}]}}}}
    return json.dumps(doc, indent=2) + "\n"


def ecs_task_definition(c, f):
    pw = machine_password(24)
    c.secret(f, "another-line", pw)
    doc = {"taskDefinition": {"family": "billing", "containerDefinitions": [{
        "name": "billing", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/billing:prod",
        "environment": [{"name": "NODE_ENV", "value": "production"},
                        {"name": "RDS_PASSWORD", "type": "PLAINTEXT", "value": pw}],
        "secrets": [{"name": "STRIPE_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/billing/stripe"}]}]}}
    return json.dumps(doc, indent=4) + "\n"


def ssm_parameters(c, f):
    pw, tk = human_password(), tok(40)
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", tk)
    params = [{"Name": "/prod/db/password", "Type": "SecureString", "Value": pw, "Version": 3,
               "LastModifiedDate": "2026-09-12T10:22:01.123000+00:00",
               "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db/password", "DataType": "text"},
              {"Name": "/prod/sendgrid/api_token", "Type": "SecureString", "Value": tk, "Version": 1,
               "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/sendgrid/api_token", "DataType": "text"}]
    return json.dumps({"Parameters": params, "InvalidParameters": []}, indent=4) + "\n"


def secretsmanager(c, f):
    pw = machine_password(28)
    c.secret(f, "escaped", pw)
    inner = json.dumps({"username": "admin", "password": pw, "engine": "postgres",
                        "host": "prod.cluster-abc.eu-west-1.rds.amazonaws.com", "port": 5432},
                       separators=(",", ":"))
    doc = {"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
           "Name": "prod/db", "VersionId": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}",
           "SecretString": inner, "VersionStages": ["AWSCURRENT"], "CreatedDate": "2026-08-01T12:00:00+00:00"}
    return json.dumps(doc, indent=4) + "\n"


def terraform_show_json(c, f):
    key = pem()
    pw = human_password()
    c.secret(f, "escaped", key[3])
    c.secret(f, "escaped", pw)
    res = {"format_version": "1.0", "values": {"root_module": {"resources": [
        {"address": "tls_private_key.deploy", "mode": "managed", "type": "tls_private_key", "name": "deploy",
         "values": {"algorithm": "RSA", "rsa_bits": 2048, "private_key_pem": "\n".join(key) + "\n",
                    "public_key_fingerprint_md5": ":".join(hexs(2) for _ in range(16))},
         "sensitive_values": {}},
        {"address": "aws_db_instance.main", "mode": "managed", "type": "aws_db_instance", "name": "main",
         "values": {"engine": "postgres", "username": "app", "password": pw, "instance_class": "db.t3.micro"}}]}}}
    return json.dumps(res, separators=(",", ":")) + "\n"


def gcp_sa_key_in_string(c, f):
    key = pem("PRIVATE KEY", 8)
    c.secret(f, "escaped", key[2])
    sa = json.dumps({"type": "service_account", "project_id": "acme-prod", "private_key_id": hexs(40),
                     "private_key": "\n".join(key) + "\n", "client_email": "ci@acme-prod.iam.gserviceaccount.com"})
    doc = {"name": "projects/acme/secrets/ci-sa/versions/3", "payload": {"data": sa}}
    return json.dumps(doc) + "\n"


def kv_table(rows):
    """A Key/Value table as vault prints it: the key column padded to the longest key
    plus a gap of at least two blanks."""
    w = max(len(k) for k, _ in rows + [("Key", "")]) + 4
    out = [f"{'Key':<{w}}Value", f"{'---':<{w}}-----"]
    out += [f"{k:<{w}}{v}" for k, v in rows]
    return "\n".join(out) + "\n"


def vault_kv_get(c, f):
    pw, rk, tk = human_password(), tok(32, "0123456789abcdef"), tok(26)
    c.secret(f, "table", pw)
    c.secret(f, "table", rk)
    c.secret(f, "table", tk)
    return f"""====== Secret Path ======
secret/data/payments/prod

======= Metadata =======
Key                Value
---                -----
created_time       2026-10-11T08:21:07.413213Z
custom_metadata    <nil>
deletion_time      n/a
destroyed          false
version            4

======= Data =======
{kv_table([("db_user", "payments"), ("db_password", pw), ("pagerduty_routing_key", rk), ("webhook_signing_secret", tk)])}"""


def vault_read_table(c, f):
    sid = f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}"
    c.secret(f, "table", sid)
    return f"""Key                   Value
---                   -----
secret_id             {sid}
secret_id_accessor    {hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}
secret_id_num_uses    0
secret_id_ttl         24h
"""


def doppler_table(c, f):
    pw, key, tk = human_password(), tok(32), "sk_live_" + tok(24)
    c.secret(f, "table", pw)
    c.secret(f, "table", key)
    c.secret(f, "table", tk)
    rows = [("DATABASE_HOST", "db.internal", ""),
            ("DB_PASSWORD", pw, ""),
            ("ENCRYPTION_KEY", key, "rotated 2026-10"),
            ("STRIPE_SECRET", tk, ""),
            ("LOG_LEVEL", "info", "")]
    w0 = max(len(r[0]) for r in rows) + 2
    w1 = max(len(r[1]) for r in rows) + 2
    line = lambda a, b, c: f"│ {a:<{w0 - 2}} │ {b:<{w1 - 2}} │ {c:<{w1 - 2}} │"
    top = "┌" + "─" * w0 + "┬" + "─" * w1 + "┬" + "─" * w1 + "┐"
    sep = "├" + "─" * w0 + "┼" + "─" * w1 + "┼" + "─" * w1 + "┤"
    bot = "└" + "─" * w0 + "┴" + "─" * w1 + "┴" + "─" * w1 + "┘"
    out = [top, line("NAME", "VALUE", "NOTE"), sep]
    for r in rows:
        out.append(line(*r))
    out.append(bot)
    return "\n".join(out) + "\n"


def az_keys_table(c, f):
    k1, k2 = tok(86, ALNUM + "+/") + "==", tok(86, ALNUM + "+/") + "=="
    c.secret(f, "table", k1)
    c.secret(f, "table", k2)
    return f"""KeyName    Permissions    Value
---------  -------------  {'-' * 88}
key1       FULL           {k1}
key2       FULL           {k2}
"""


def aws_table(c, f):
    sk = tok(40, ALNUM + "+/")
    c.secret(f, "table", sk)
    return f"""-----------------------------------------------------------------------------
|                              CreateAccessKey                              |
+---------------------------------------------------------------------------+
||                                AccessKey                                ||
|+------------------+-------------------------------------------------------+|
||  AccessKeyId     |  AKIA{tok(16, string.ascii_uppercase + '234567')}                                 ||
||  CreateDate      |  2026-11-02T10:11:12+00:00                            ||
||  SecretAccessKey |  {sk}             ||
||  Status          |  Active                                               ||
||  UserName        |  ci-deployer                                          ||
|+------------------+-------------------------------------------------------+|
"""


def netrc_multiline(c, f):
    pw = human_password()
    tk = tok(40, "0123456789abcdef")
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", tk)
    return f"""machine github.com
  login ci-bot
  password {tk}

machine artifacts.internal.example.com
    login deploy
    password {pw}
"""


def vocabulary_helm_values(c, f):
    cookie = tok(32, string.ascii_uppercase)
    pw = human_password()
    c.secret(f, "vocabulary", cookie)
    c.secret(f, "vocabulary", pw)
    return f"""USER-SUPPLIED VALUES:
auth:
  username: user
  erlangCookie: {cookie}
  existingPasswordSecret: ""
ldap:
  enabled: true
  server: ldap.internal
  user_dn_pattern: cn=${{username}},ou=people,dc=example,dc=org
  ldap_bind_pw: {pw}
persistence:
  size: 8Gi
"""


def vocabulary_misc(c, f):
    rk = hexs(32)
    gpr = tok(40, "0123456789abcdef")
    ident = b64(f"deploy:{machine_password(16)}")
    mauth = machine_password(18)
    psk = human_password()
    c.secret(f, "vocabulary", rk)
    c.secret(f, "vocabulary", gpr)
    c.secret(f, "vocabulary", ident)
    c.secret(f, "vocabulary", mauth)
    c.secret(f, "vocabulary", psk)
    return f"""==> alertmanager.yml <==
receivers:
- name: pagerduty
  pagerduty_configs:
  - routing_key: {rk}
    severity: critical

==> ~/.gradle/gradle.properties <==
org.gradle.jvmargs=-Xmx2g
gpr.user=acme-ci
gpr.key={gpr}

==> .yarnrc.yml <==
npmRegistryServer: "https://npm.pkg.example.com"
npmAlwaysAuth: true
npmAuthIdent: "{ident}"

==> /etc/redis/redis.conf (grep) <==
masterauth {mauth}
requirepass {mauth}

==> /etc/hostapd/hostapd.conf <==
ssid=office-5g
wpa_passphrase={psk}
"""


def vocabulary_more(c, f):
    sasl = machine_password(22)
    ks = human_password()
    auth = tok(8, ALNUM)
    bindpw = human_password()
    c.secret(f, "vocabulary", sasl)
    c.secret(f, "vocabulary", ks)
    c.secret(f, "vocabulary", auth)
    c.secret(f, "vocabulary", bindpw)
    return f"""$ cat /etc/kafka/client.properties
bootstrap.servers=kafka-0.kafka:9093
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="{sasl}";
ssl.truststore.location=/etc/kafka/truststore.jks
ssl.keystore.password={ks}
$ grep -A3 vrrp_instance /etc/keepalived/keepalived.conf
vrrp_instance VI_1 {{
    authentication {{
        auth_type PASS
        auth_pass {auth}
    }}
$ sudo grep -E 'ldap_default_authtok|bind' /etc/sssd/sssd.conf
ldap_default_bind_dn = cn=sssd,ou=services,dc=example,dc=org
ldap_default_authtok = {bindpw}
"""


def credential_flags_ps(c, f):
    w, p, rp, ra = human_password(), machine_password(14), tok(24), tok(20)
    p = p.replace("-", "x")
    c.secret(f, "flag", w)
    c.secret(f, "flag", p)
    c.secret(f, "flag", rp)
    c.secret(f, "flag", ra)
    return f"""USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root           1  0.0  0.1 167800 11800 ?        Ss   Nov20   0:12 /sbin/init
ldap       21931  0.0  0.0  12340  4400 ?        S    09:01   0:00 ldapsearch -x -H ldaps://ldap.internal -D cn=admin,dc=example,dc=org -w {w} -b dc=example,dc=org (uid=*)
mysql      22014  0.1  0.2  45872 18320 ?        S    09:02   0:00 mysqldump -h db-primary -u backup -p{p} --single-transaction app
redis       1044  0.3  0.4  72212 32010 ?        Ssl  Nov20  14:21 /usr/bin/redis-server 0.0.0.0:6379 --requirepass {rp} --appendonly yes
app        23310  0.0  0.0  10232  3400 pts/0    S+   09:05   0:00 redis-cli -h cache.internal -a {ra} --no-auth-warning ping
"""


def credential_flags_history(c, f):
    a, b, d, e = human_password(), tok(18), machine_password(16).replace("-", "x"), tok(20)
    c.secret(f, "flag", a)
    c.secret(f, "flag", b)
    c.secret(f, "flag", d)
    c.secret(f, "flag", e)
    return f"""  501  kubectl -n prod get pods
  502  mongosh "mongodb://db-0.mongo:27017/admin" --username root --password {a}
  503  keytool -importkeystore -srckeystore old.jks -srcstorepass {b} -destkeystore new.p12 -deststoretype PKCS12
  504  openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{d}
  505  ipmitool -I lanplus -H 10.0.0.12 -U ADMIN -P {e} chassis power status
  506  history
"""


def set_x_trace(c, f):
    pw, tk = human_password(), tok(30)
    c.secret(f, "flag", pw)
    c.secret(f, "flag", tk)
    return f"""+ set -euo pipefail
+ echo 'Deploying to prod'
Deploying to prod
+ mysql -h db.internal -u deploy -p{pw} -e 'SELECT 1'
+ curl -fsS -H 'Content-Type: application/json' --data '{{"text":"deployed"}}' https://chat.internal/hooks/{tk}
+ ldapwhoami -x -D uid=deploy,ou=svc,dc=example,dc=org -w {pw}
"""


def docker_inspect_env(c, f):
    pw, tk, u = human_password(), tok(32), machine_password(12)
    c.secret(f, "value-shape", pw)
    c.secret(f, "vocabulary", tk)
    c.secret(f, "value-shape", u)
    doc = [{"Id": hexs(64), "Name": "/api", "Config": {"Hostname": hexs(12), "Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"POSTGRES_PASSWORD={pw}",
        f"RABBITMQ_DEFAULT_PASS={u}",
        f"SENTRY_AUTH={tk}",
        "LANG=C.UTF-8"], "Image": "api:prod"}}]
    return json.dumps(doc, indent=4) + "\n"


def env_dump_with_secrets(c, f):
    pw = human_password()
    url_pw = tok(8) + "/" + tok(6) + "+" + tok(4)
    c.secret(f, "value-shape", pw)
    c.secret(f, "value-shape", url_pw)
    return f"""SHELL=/bin/bash
PWD=/srv/app
HOME=/home/app
DB_PASSWORD={pw}
DATABASE_URL=postgres://app:{url_pw}@db.internal:5432/app
GIT_ASKPASS=/usr/lib/git-core/git-gui--askpass
SSH_AUTH_SOCK=/run/user/1000/keyring/ssh
TERM=xterm-256color
"""


def dotenv_word_password(c, f):
    pw = human_password()
    pw2 = human_password()
    c.secret(f, "value-shape", pw)
    c.secret(f, "value-shape", pw2)
    return f"""$ cat -n .env
     1	APP_ENV=production
     2	DB_HOST=db.internal
     3	DB_PASSWORD={pw}
     4	SMTP_PASS={pw2}
     5	CACHE_TTL=300
"""


def cat_a_listing(c, f):
    pw, tk = human_password(), tok(30)
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", tk)
    return f"""$ cat -A config/database.yml
production:$
  adapter: postgresql$
  password: {pw}$
  api_token: "{tk}"^M$
"""


def git_log_p(c, f):
    pw, tk = human_password(), tok(40, "0123456789abcdef")
    c.secret(f, "another-line", pw)
    c.secret(f, "vocabulary", tk)
    return f"""commit {hexs(40)}
Author: Dev <dev@example.com>
Date:   Tue Nov 3 10:00:00 2026 +0000

    wire the staging LDAP

diff --git a/config/ldap.yml b/config/ldap.yml
index {hexs(7)}..{hexs(7)} 100644
--- a/config/ldap.yml
+++ b/config/ldap.yml
@@ -1,4 +1,6 @@
 host: ldap.staging
+bind_dn: cn=app,dc=example,dc=org
+bind_password: {pw}
+gpr.key={tk}
"""


def ansible_vars(c, f):
    pw, su = human_password(), machine_password(14)
    c.secret(f, "vocabulary", pw)
    c.secret(f, "vocabulary", su)
    return f"""ok: [web-01] => {{
    "hostvars[inventory_hostname]": {{
        "ansible_host": "10.0.3.11",
        "ansible_become_pass": "{su}",
        "mysql_root_pw": "{pw}",
        "app_port": 8080
    }}
}}
"""


def gcloud_sql_users(c, f):
    pw = human_password()
    c.secret(f, "flag", pw)
    return f"""$ gcloud sql users set-password app --instance=prod-pg --password={pw}
Updating Cloud SQL user...done.
"""


def helm_get_values_json(c, f):
    pw, tk = human_password(), tok(40)
    c.secret(f, "vocabulary", pw)
    c.secret(f, "vocabulary", tk)
    doc = {"postgresql": {"auth": {"postgresPassword": pw, "database": "app"}},
           "grafana": {"adminUser": "admin", "smtp": {"host": "smtp.example.com"}},
           "runner": {"registrationToken": tk}}
    return json.dumps(doc) + "\n"


def terraform_output_json(c, f):
    pw, tk = human_password(), tok(40)
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", tk)
    doc = {"db_endpoint": {"sensitive": False, "type": "string", "value": "prod.cluster-abc.eu-west-1.rds.amazonaws.com"},
           "db_password": {"sensitive": True, "type": "string", "value": pw},
           "runner_registration_token": {"sensitive": True, "type": "string", "value": tk}}
    return json.dumps(doc, indent=2) + "\n"


def vault_kv_get_json(c, f):
    pw, key = human_password(), tok(32)
    c.secret(f, "another-line", pw)
    c.secret(f, "another-line", key)
    doc = {"request_id": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}", "lease_id": "", "lease_duration": 0,
           "renewable": False, "data": {"data": {"db_password": pw, "stripe_api_key": key, "db_user": "billing"},
                                        "metadata": {"created_time": "2026-10-11T08:21:07.413213Z", "version": 4}},
           "warnings": None}
    return json.dumps(doc, indent=2) + "\n"


def ps_auxeww(c, f):
    pw, auth, key = human_password(), tok(32), tok(40, ALNUM + "+/")
    c.secret(f, "vocabulary", pw)
    c.secret(f, "vocabulary", auth)
    c.secret(f, "vocabulary", key)
    return (f"USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n"
            f"app        {R.randint(1000, 9999)}  0.3  1.2 1043212 98312 ?      Ssl  Nov20   3:12 node /srv/api/server.js "
            f"PATH=/usr/local/bin:/usr/bin:/bin HOSTNAME=api-7d9f NODE_ENV=production DB_PASSWORD={pw} "
            f"GITHUB_AUTH={auth} AWS_SECRET_ACCESS_KEY={key} HOME=/home/app\n"
            f"root       {R.randint(1000, 9999)}  0.0  0.0   2616   528 ?        Ss   Nov20   0:00 /usr/sbin/cron -f "
            f"PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8\n")


def last_applied_other_keys(c, f):
    cfg, cert = tok(48, ALNUM + "+/"), tok(64, ALNUM + "+/")
    c.secret(f, "another-line", cfg)
    c.secret(f, "another-line", cert)
    annot = json.dumps({"apiVersion": "v1", "data": {"config.json": cfg, "ca.crt": cert}, "kind": "Secret",
                        "metadata": {"annotations": {}, "name": "registry", "namespace": "ci"}, "type": "Opaque"},
                       separators=(",", ":"))
    return f"""apiVersion: v1
kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {annot}
  name: registry
  namespace: ci
type: Opaque
"""


def az_keys_json(c, f):
    k1, k2 = tok(86, ALNUM + "+/") + "==", tok(86, ALNUM + "+/") + "=="
    c.secret(f, "another-line", k1)
    c.secret(f, "another-line", k2)
    return json.dumps([{"creationTime": "2026-01-04T10:00:00.000000+00:00", "keyName": "key1", "permissions": "FULL", "value": k1},
                       {"creationTime": "2026-01-04T10:00:00.000000+00:00", "keyName": "key2", "permissions": "FULL", "value": k2}], indent=2) + "\n"


def az_sp_create(c, f):
    pw = tok(8) + "~" + tok(31, ALNUM + "._-")
    c.secret(f, "vocabulary", pw)
    return json.dumps({"appId": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}", "displayName": "ci-deployer",
                       "password": pw, "tenant": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}"}, indent=2) + "\n"


def helm_values_yaml(c, f):
    pw, rpw, tk, smtp = human_password(), machine_password(16), tok(32), human_password()
    for v in (pw, rpw, tk, smtp):
        c.secret(f, "vocabulary", v)
    return f"""USER-SUPPLIED VALUES:
global:
  postgresql:
    auth:
      postgresPassword: {pw}
      replicationPassword: "{rpw}"
gitlab:
  runner:
    runnerToken: {tk}
grafana:
  smtp:
    enabled: true
    host: smtp.example.com:587
    user: alerts@example.com
    password: {smtp}
"""


# ------------------------------------------------------------------ benign families


def b_env_dump():
    return "\n".join([
        "SHELL=/bin/bash",
        f"SESSION_MANAGER=local/host:@/tmp/.ICE-unix/{R.randint(1000, 9999)},unix/host:/tmp/.ICE-unix/{R.randint(1000, 9999)}",
        "GIT_ASKPASS=/usr/lib/git-core/git-gui--askpass",
        "SSH_ASKPASS=/usr/bin/ksshaskpass",
        f"SSH_AUTH_SOCK=/tmp/ssh-{tok(12)}/agent.{R.randint(1000, 99999)}",
        "SSH_AGENT_PID=" + str(R.randint(1000, 99999)),
        "TOKEN_URL=https://oauth2.googleapis.com/token",
        "OS_AUTH_URL=https://keystone.internal:5000/v3",
        "VAULT_ADDR=https://vault.internal:8200",
        "SECRET_NAME=db-credentials",
        "KEY_VAULT_NAME=kv-prod-weu",
        "AWS_SECRET_ARN=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        "PASSWORD_STORE_DIR=/home/dev/.password-store",
        "GNUPGHOME=/home/dev/.gnupg",
        "KUBECONFIG=/home/dev/.kube/config",
        "TOKEN_ENDPOINT=https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "AUTH_DOMAIN=acme.eu.auth0.com",
        "GPG_KEY=" + hexs(40).upper(),
        "PYTHON_SHA256=" + hexs(64),
        "NODE_AUTH_TOKEN_FILE=/run/secrets/npm",
        "SECRETS_PATH=/run/secrets",
        "COLORTERM=truecolor",
        f"XDG_SESSION_ID={R.randint(1, 99)}",
        "PWD=/home/dev/src/app",
        "OLDPWD=/home/dev",
        "LESSOPEN=| /usr/bin/lesspipe %s",
        "_=/usr/bin/env",
    ]) + "\n"


def b_helm_checksums():
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        checksum/config: {hexs(64)}
        checksum/secret: {hexs(64)}
        checksum/secrets: {hexs(64)}
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
      - name: web
        image: "registry.example.com/web:{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}"
        envFrom:
        - secretRef:
            name: web-secrets
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: db
              key: password
"""


def b_notebook():
    png = tok(300, ALNUM + "+/")
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": 3, "metadata": {},
                                  "outputs": [{"data": {"image/png": png, "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
                                               "metadata": {}, "output_type": "display_data"}],
                                  "source": ["plt.plot(x, y)\n", "plt.show()"]}],
                       "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4}, indent=1) + "\n"


def b_env_example():
    return """# Copy to .env and fill in
APP_ENV=development
DB_HOST=localhost
DB_PASSWORD=change-me
API_KEY=your-api-key-here
SECRET_KEY=replace-with-a-long-random-string
JWT_SECRET=your_jwt_secret
SESSION_SECRET=changeme
STRIPE_SECRET=<your stripe secret>
AUTH_TOKEN=xxxxxxxxxxxxxxxxxxxx
SMTP_PASSWORD=
REDIS_PASSWORD=${REDIS_PASSWORD}
"""


def b_help_text():
    return """Usage:
  docker login [OPTIONS] [SERVER]

Options:
  -p, --password string   Password
      --password-stdin    Take the password from stdin
  -u, --username string   Username

Usage: mysql [OPTIONS] [database]
  -p, --password[=name]
                      Password to use when connecting to server. If password is
                      not given it's asked from the tty.

usage: ldapsearch [options] [filter [attributes...]]
  -w passwd  bind password (for simple authentication)
  -W         prompt for bind password

Usage: redis-cli [OPTIONS] [cmd [arg [arg ...]]]
  -a <password>      Password to use when connecting to the server.
  --pass <password>  Alias of -a for consistency with the new --user option.
      --requirepass <password>  (redis-server) require clients to authenticate

Flags:
      --token string        Bearer token for authentication to the API server
      --client-secret string   OAuth client secret
"""


def b_secret_names():
    return f"""apiVersion: v1
kind: Pod
spec:
  volumes:
  - name: tls
    secret:
      secretName: web-tls
  imagePullSecrets:
  - name: regcred
---
auth:
  existingSecret: pg-credentials
  secretKeys:
    adminPasswordKey: postgres-password
    userPasswordKey: password
tokenSecretName: runner-token
passwordSecretRef:
  name: grafana-admin
  key: admin-password
{{"SecretId": "prod/db", "VersionStage": "AWSCURRENT"}}
"""


def b_describe_secret():
    return """Name:         db-credentials
Namespace:    prod
Labels:       app=db
Annotations:  <none>

Type:  Opaque

Data
====
password:  24 bytes
username:  8 bytes
"""


def b_terraform_plan():
    return f"""Terraform will perform the following actions:

  # aws_db_instance.main will be created
  + resource "aws_db_instance" "main" {{
      + engine            = "postgres"
      + password          = (sensitive value)
      + username          = "app"
      + id                = (known after apply)
    }}

  # random_password.db will be created
  + resource "random_password" "db" {{
      + length  = 32
      + result  = (sensitive value)
      + special = true
    }}

Plan: 2 to add, 0 to change, 0 to destroy.
"""


def b_configmap():
    return f"""apiVersion: v1
data:
  CACHE_HOST: redis-master.default.svc.cluster.local
  FEATURE_FLAGS: search,export,beta-ui
  LOG_LEVEL: info
  nginx.conf: |
    server {{
      listen 80;
      location / {{ proxy_pass http://web:8080; }}
    }}
kind: ConfigMap
metadata:
  name: web-config
  namespace: prod
"""


def b_vault_metadata():
    return f"""========== Metadata Path ==========
secret/metadata/payments/prod

========== Metadata ==========
Key                     Value
---                     -----
cas_required            false
created_time            2026-06-01T10:00:00.000000Z
current_version         4
delete_version_after    0s
max_versions            0
oldest_version          0
updated_time            2026-10-11T08:21:07.413213Z
"""


def b_ps_aux():
    rows = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
    for _ in range(30):
        rows.append(f"app        {R.randint(1000, 99999):5d}  0.{R.randint(0, 9)}  0.{R.randint(0, 9)} {R.randint(10000, 999999):6d} {R.randint(1000, 99999):5d} ?        S    09:0{R.randint(0, 9)}   0:00 " + R.choice([
            "/usr/bin/python3 -m gunicorn app:app --workers 4 --bind 0.0.0.0:8000",
            "/usr/sbin/sshd -D",
            "postgres: app app 10.0.0.5(51234) idle",
            "/usr/bin/redis-server 127.0.0.1:6379",
            "node /srv/web/server.js --port 3000",
            "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
            "ssh-agent -s",
            "gpg-agent --homedir /home/dev/.gnupg --use-standard-socket --daemon",
            "/usr/lib/git-core/git-credential-cache--daemon /home/dev/.cache/git/credential/socket",
            "vault agent -config=/etc/vault/agent.hcl",
        ]))
    return "\n".join(rows) + "\n"


def b_build_log():
    lines = []
    for i in range(40):
        lines.append(R.choice([
            f"   Compiling tokio v1.{R.randint(30, 48)}.{R.randint(0, 9)}",
            f"   Compiling secrecy v0.{R.randint(8, 10)}.{R.randint(0, 3)}",
            f"npm WARN deprecated keygrip@1.1.0: Package no longer supported.",
            f"Step {i}/40 : RUN pip install --no-cache-dir -r requirements.txt",
            f" ---> Using cache",
            f" ---> {hexs(12)}",
            f"Successfully built {hexs(12)}",
            f"[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/keycloak/keycloak-core/{R.randint(20, 26)}.0.{R.randint(0, 9)}/keycloak-core.pom",
            f"go: downloading golang.org/x/oauth2 v0.{R.randint(10, 30)}.0",
            f"sha256:{hexs(64)}",
            f"Verifying checksum: sha512-{tok(86, ALNUM + '+/')}==",
            f"INFO token refresh scheduled in {R.randint(100, 3000)}s",
            f"DEBUG auth: using credential helper 'osxkeychain'",
            f"WARN secret 'db-credentials' not found in namespace 'dev', using defaults",
        ]))
    return "\n".join(lines) + "\n"


def b_kubectl_get():
    rows = ["NAME                          TYPE                                  DATA   AGE"]
    for name, typ in [("default-token-x7k2p", "kubernetes.io/service-account-token"), ("regcred", "kubernetes.io/dockerconfigjson"),
                      ("web-tls", "kubernetes.io/tls"), ("db-credentials", "Opaque"), ("sh.helm.release.v1.web.v12", "helm.sh/release.v1")]:
        rows.append(f"{name:<30}{typ:<38}{R.randint(1, 4):<7}{R.randint(1, 300)}d")
    return "\n".join(rows) + "\n"


def b_git_log():
    out = []
    for _ in range(8):
        out.append(f"commit {hexs(40)}\nAuthor: Dev <dev@example.com>\nDate:   Mon Oct 5 10:00:00 2026 +0000\n\n    " + R.choice([
            "rotate the DB password via Vault (no secret in repo)",
            "add token refresh to the API client",
            "move SECRET_KEY to the environment",
            "docs: explain how to set API_KEY",
        ]) + "\n")
    return "\n".join(out)


def b_lockfile():
    out = []
    for _ in range(25):
        name = R.choice(["jsonwebtoken", "passport", "keytar", "secret-handshake", "auth0", "oauth", "password-hash"])
        out.append(f'"node_modules/{name}": {{\n  "version": "{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}",\n  "resolved": "https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",\n  "integrity": "sha512-{tok(86, ALNUM + "+/")}=="\n}},')
    return "\n".join(out) + "\n"


def b_ssh_listing():
    return f"""$ ls -la ~/.ssh
total 24
drwx------  2 dev dev 4096 Nov  3 10:00 .
-rw-------  1 dev dev  419 Nov  3 10:00 id_ed25519
-rw-r--r--  1 dev dev  105 Nov  3 10:00 id_ed25519.pub
-rw-r--r--  1 dev dev 1330 Nov  3 10:00 known_hosts
$ ssh-keygen -lf ~/.ssh/id_ed25519.pub
256 SHA256:{tok(43, ALNUM + '+/')} dev@laptop (ED25519)
$ gpg --list-secret-keys
sec   ed25519 2026-01-01 [SC]
      {hexs(40).upper()}
uid           [ultimate] Dev <dev@example.com>
"""


def b_terraform_output():
    return json.dumps({"db_endpoint": {"sensitive": False, "type": "string", "value": "prod.cluster-abc.eu-west-1.rds.amazonaws.com"},
                       "vpc_id": {"sensitive": False, "type": "string", "value": "vpc-" + hexs(17)},
                       "db_password": {"sensitive": True, "type": "string"},
                       "key_vault_uri": {"sensitive": False, "type": "string", "value": "https://kv-prod-weu.vault.azure.net/"}}, indent=2) + "\n"


def b_docker_inspect():
    return json.dumps([{"Id": hexs(64), "Name": "/web", "Config": {"Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "GPG_KEY=" + hexs(40).upper(), "PYTHON_VERSION=3.12.7", "PYTHON_SHA256=" + hexs(64),
        "SECRET_KEY_FILE=/run/secrets/django_key", "DB_PASSWORD_FILE=/run/secrets/db_password",
        "VAULT_ADDR=https://vault.internal:8200"],
        "Labels": {"org.opencontainers.image.revision": hexs(40)}}}], indent=4) + "\n"


def b_ps_auxeww():
    return (f"app        {R.randint(1000, 9999)}  0.1  0.4 712300 40120 ?      Sl   Nov20   0:31 /usr/bin/python3 app.py "
            f"PATH=/usr/bin:/bin LANG=C.UTF-8 SSH_AUTH_SOCK=/tmp/ssh-{tok(10)}/agent.{R.randint(100, 9999)} "
            f"GIT_ASKPASS=/usr/lib/git-core/git-gui--askpass TOKEN_URL=https://oauth2.googleapis.com/token HOME=/home/app\n")


def b_vault_json_meta():
    return json.dumps({"request_id": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}", "data": {
        "created_time": "2026-06-01T10:00:00.000000Z", "current_version": 4, "max_versions": 0,
        "versions": {"4": {"created_time": "2026-10-11T08:21:07.413213Z", "deletion_time": "", "destroyed": False}}}}, indent=2) + "\n"


SECRET_FAMILIES = [
    ("kubectl-secret-yaml", kubectl_secret_yaml, 6),
    ("kubectl-secret-json", kubectl_secret_json, 6),
    ("kubectl-deploy-env-json", kubectl_deploy_env_json, 6),
    ("ecs-task-definition", ecs_task_definition, 5),
    ("ssm-parameters", ssm_parameters, 5),
    ("secretsmanager", secretsmanager, 6),
    ("terraform-show-json", terraform_show_json, 5),
    ("gcp-sa-key-in-string", gcp_sa_key_in_string, 4),
    ("vault-kv-get", vault_kv_get, 6),
    ("vault-read-table", vault_read_table, 4),
    ("doppler-table", doppler_table, 5),
    ("az-keys-table", az_keys_table, 4),
    ("aws-table", aws_table, 4),
    ("netrc", netrc_multiline, 6),
    ("helm-values-vocabulary", vocabulary_helm_values, 5),
    ("config-vocabulary", vocabulary_misc, 5),
    ("config-vocabulary-more", vocabulary_more, 5),
    ("ps-credential-flags", credential_flags_ps, 5),
    ("history-credential-flags", credential_flags_history, 5),
    ("set-x-trace", set_x_trace, 5),
    ("docker-inspect-env", docker_inspect_env, 5),
    ("env-dump", env_dump_with_secrets, 6),
    ("dotenv-words", dotenv_word_password, 6),
    ("cat-a-listing", cat_a_listing, 4),
    ("git-log-p", git_log_p, 4),
    ("ansible-vars", ansible_vars, 4),
    ("gcloud-flags", gcloud_sql_users, 3),
    ("helm-values-json", helm_get_values_json, 4),
    ("terraform-output-json", terraform_output_json, 5),
    ("vault-kv-get-json", vault_kv_get_json, 5),
    ("ps-auxeww", ps_auxeww, 5),
    ("last-applied-configuration", last_applied_other_keys, 4),
    ("az-keys-json", az_keys_json, 4),
    ("az-sp-create", az_sp_create, 4),
    ("helm-values-yaml", helm_values_yaml, 5),
]

BENIGN_FAMILIES = [
    ("env-dump", b_env_dump, 60),
    ("helm-checksums", b_helm_checksums, 60),
    ("notebook", b_notebook, 40),
    ("env-example", b_env_example, 40),
    ("help-text", b_help_text, 40),
    ("secret-names", b_secret_names, 50),
    ("describe-secret", b_describe_secret, 40),
    ("terraform-plan", b_terraform_plan, 40),
    ("configmap", b_configmap, 50),
    ("vault-metadata", b_vault_metadata, 40),
    ("ps-aux", b_ps_aux, 60),
    ("build-log", b_build_log, 120),
    ("kubectl-get", b_kubectl_get, 40),
    ("git-log", b_git_log, 60),
    ("lockfile", b_lockfile, 60),
    ("ssh-listing", b_ssh_listing, 40),
    ("terraform-output", b_terraform_output, 40),
    ("docker-inspect", b_docker_inspect, 40),
    ("ps-auxeww", b_ps_auxeww, 60),
    ("vault-json-metadata", b_vault_json_meta, 40),
]


def build():
    c = Corpus()
    for name, fn, n in SECRET_FAMILIES:
        c.add(name, fn, n)
    for name, fn, n in BENIGN_FAMILIES:
        c.benign(name, fn, n)
    return c


def write(c):
    for sub in ("secrets", "benign"):
        d = os.path.join(OUT, sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
    for name, text in c.secret_files:
        with open(os.path.join(OUT, "secrets", name), "w") as fh:
            fh.write(text)
    # The benign text in one file per family (fewer files, the same bytes).
    by_family = {}
    for name, text in c.benign_files:
        fam = name.split("-", 1)[1]
        by_family.setdefault(fam, []).append(text)
    for fam, texts in by_family.items():
        with open(os.path.join(OUT, "benign", fam), "w") as fh:
            fh.write("\n".join(texts))
    with open(os.path.join(OUT, "secrets.json"), "w") as fh:
        json.dump(c.secrets, fh, indent=1)
        fh.write("\n")
    benign_bytes = sum(len(t.encode()) for _, t in c.benign_files)
    print(f"{len(c.secrets)} secrets in {len(c.secret_files)} outputs "
          f"({len({s['family'] for s in c.secrets})} families); benign text {benign_bytes / 1e6:.2f} MB")


def flagged_lines(detect_secrets, path):
    """The line numbers detect-secrets flags in one file."""
    res = json.loads(subprocess.run([detect_secrets, "scan", "--all-files", path],
                                    capture_output=True, text=True, check=True).stdout)
    return {h["line_number"] for hs in res["results"].values() for h in hs}


def compare(execkit, detect_secrets):
    """Both tools on the fixtures as written: secrets found, and changed (flagged) lines per
    MB of the benign text."""
    secrets = json.load(open(os.path.join(OUT, "secrets.json")))
    leaked = []
    for s in secrets:
        path = os.path.join(OUT, "secrets", s["file"])
        out = subprocess.run([execkit, "redact", path], capture_output=True, text=True, check=True).stdout
        if s["value"] in out:
            leaked.append(s)
    ds_found = 0
    if detect_secrets:
        flagged = {}
        for name in sorted(os.listdir(os.path.join(OUT, "secrets"))):
            path = os.path.join(OUT, "secrets", name)
            flagged[name] = flagged_lines(detect_secrets, path)
        for s in secrets:
            lines = open(os.path.join(OUT, "secrets", s["file"])).read().split("\n")
            at = {i + 1 for i, l in enumerate(lines) if s["value"].split("\n")[0] in l}
            if at & flagged[s["file"]]:
                ds_found += 1
    benign_dir = os.path.join(OUT, "benign")
    total_bytes, ek_changed, ds_flagged = 0, 0, 0
    for name in sorted(os.listdir(benign_dir)):
        path = os.path.join(benign_dir, name)
        text = open(path).read()
        total_bytes += len(text.encode())
        out = subprocess.run([execkit, "redact", path], capture_output=True, text=True, check=True).stdout
        ek_changed += sum(1 for a, b in zip(text.split("\n"), out.split("\n")) if a != b)
        if detect_secrets:
            ds_flagged += len(flagged_lines(detect_secrets, path))
    mb = total_bytes / 1e6
    print(f"secrets: {len(secrets)}; execkit leaked {len(leaked)}", end="")
    if detect_secrets:
        print(f"; detect-secrets found {ds_found}", end="")
    print()
    print(f"benign text {mb:.2f} MB: execkit changed {ek_changed} lines ({ek_changed / mb:.2f}/MB)", end="")
    if detect_secrets:
        print(f"; detect-secrets flagged {ds_flagged} lines ({ds_flagged / mb:.2f}/MB)", end="")
    print()
    by_cause = {}
    for s in leaked:
        by_cause.setdefault(s["cause"], []).append(f"{s['file']}: {s['value'][:40]}")
    for cause, items in sorted(by_cause.items()):
        print(f"  leaked ({cause}): {len(items)}")
        for i in items:
            print(f"    {i}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        write(build())
