"""infra/template.yaml as the emulated pipeline sees it: resolved with the test's names, and its IAM
roles made real in moto.

    cfn_stack.py json TEMPLATE NAMES_JSON
        The template with every !Ref, !Sub, !GetAtt, !If (and the Conditions they read) resolved
        with the test's names, as JSON on stdout.
    cfn_stack.py principals ENDPOINT TEMPLATE NAMES_JSON REMOVE_JSON
        Creates in moto each AWS::IAM::Role that a function or the state machine runs as, with
        its trust policy and its inline policies from the template, assumes it, and prints the
        temporary credentials per function binary, for the state machine, and for an operator
        user (the test's own calls). REMOVE_JSON is a list of [role, action] pairs to take out of
        the role's policies first (a test that proves a permission is needed).

NAMES_JSON: {"StackName", "Region", "AccountId", "Partition", "Parameters": {...},
"Physical": {logical id: name}} - a resource's physical name (the bucket's name, the KMS key id).

What moto's IAM access control evaluates (moto 5.2, moto/iam/access_control.py and
moto/core/authorization.py), and so how a role's documents are put into moto:
- S3 requests are checked against the bucket or object ARN; every other service only by action
  against the resource "*" (IAM, STS and SQS aside). A non-S3 statement's Resource therefore
  becomes "*": moto checks that the role has the action, not on which resource.
- Conditions are evaluated against no request context, so an Allow with a Condition acts as a
  Deny in moto. Such statements are left out: the emulated role is never stronger than the real
  one, and what they allow (tagged clusters, kms via S3) is checked by `json` and the tests.
"""

import json
import sys

import yaml

NO_VALUE = object()


class Tag:
    def __init__(self, name, value):
        self.name, self.value = name, value


def _constructor(name):
    def build(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {("Ref" if name == "Ref" else "Fn::" + name): value}

    return build


class Loader(yaml.SafeLoader):
    pass


for _tag in ("Ref", "Sub", "GetAtt", "If", "Not", "Equals", "Join", "Select", "Split", "And", "Or"):
    Loader.add_constructor("!" + _tag, _constructor(_tag))


class Resolver:
    def __init__(self, template, names):
        self.t = template
        self.names = names
        params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        params.update(names.get("Parameters", {}))
        self.params = params
        self.pseudo = {
            "AWS::StackName": names["StackName"],
            "AWS::Region": names["Region"],
            "AWS::AccountId": names["AccountId"],
            "AWS::Partition": names.get("Partition", "aws"),
            "AWS::NoValue": NO_VALUE,
        }
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.value(self.t["Conditions"][name])
        return self.conditions[name]

    def physical(self, logical):
        return self.names.get("Physical", {}).get(logical, logical)

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        res = self.t["Resources"][name]
        kind = res["Type"]
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return self.getatt(name, "Arn")
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self.value(res["Properties"].get("FunctionName", name))
        if kind == "AWS::Logs::LogGroup":
            return self.value(res["Properties"]["LogGroupName"])
        return self.physical(name)

    def getatt(self, name, attr):
        p, r, a = self.pseudo["AWS::Partition"], self.pseudo["AWS::Region"], self.pseudo["AWS::AccountId"]
        kind = self.t["Resources"][name]["Type"]
        if attr != "Arn":
            raise ValueError(f"!GetAtt {name}.{attr} is not resolved here")
        if kind == "AWS::S3::Bucket":
            return f"arn:{p}:s3:::{self.ref(name)}"
        if kind == "AWS::KMS::Key":
            return f"arn:{p}:kms:{r}:{a}:key/{self.ref(name)}"
        if kind == "AWS::IAM::Role":
            return f"arn:{p}:iam::{a}:role/{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:{p}:logs:{r}:{a}:log-group:{self.ref(name)}:*"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:{p}:lambda:{r}:{a}:function:{self.ref(name)}"
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            sm = self.value(self.t["Resources"][name]["Properties"]["Name"])
            return f"arn:{p}:states:{r}:{a}:stateMachine:{sm}"
        raise ValueError(f"!GetAtt {name}.Arn of a {kind} is not resolved here")

    def sub(self, text, variables):
        out, i = [], 0
        while True:
            j = text.find("${", i)
            if j < 0:
                out.append(text[i:])
                return "".join(out)
            k = text.index("}", j)
            out.append(text[i:j])
            var = text[j + 2 : k]
            if var in variables:
                out.append(str(variables[var]))
            elif "." in var:
                out.append(self.getatt(*var.split(".", 1)))
            else:
                out.append(str(self.ref(var)))
            i = k + 1

    def value(self, node):
        if isinstance(node, list):
            out = [self.value(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.getatt(*arg)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], {k: self.value(v) for k, v in arg[1].items()})
                return self.sub(arg, {})
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = (self.value(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def resources(self):
        out = {}
        for name, res in self.t["Resources"].items():
            cond = res.get("Condition")
            if cond and not self.condition(cond):
                continue
            out[name] = {**res, "Properties": self.value(res.get("Properties", {}))}
        return out


def resolved(template_path, names):
    with open(template_path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=Loader)
    r = Resolver(template, names)
    return {"Resources": r.resources(), "Physical": {k: r.ref(k) for k in template["Resources"]}}


def statements(doc):
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(v):
    return v if isinstance(v, list) else [v]


def without(doc, action):
    """The document with `action` taken out of every statement (statements left empty go)."""
    kept = []
    for st in statements(doc):
        actions = [a for a in as_list(st["Action"]) if a != action]
        if actions:
            kept.append({**st, "Action": actions})
    return {**doc, "Statement": kept}


def for_moto(doc):
    """The document as moto can evaluate it (see the module comment)."""
    kept = []
    for st in statements(doc):
        if st.get("Condition"):
            continue
        actions = as_list(st["Action"])
        if not all(a.startswith("s3:") for a in actions):
            st = {**st, "Resource": "*"}
        kept.append(st)
    return {"Version": "2012-10-17", "Statement": kept}


def principals(endpoint, template_path, names, removals):
    import boto3

    res = resolved(template_path, names)["Resources"]
    session = dict(
        endpoint_url=endpoint,
        region_name=names["Region"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    iam, sts = boto3.client("iam", **session), boto3.client("sts", **session)

    def role_of(props):
        role = props["Role"]
        return role.rsplit("/", 1)[1]

    runs_as = {}
    for name, r in res.items():
        if r["Type"] == "AWS::Serverless::Function":
            binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
            runs_as[binary] = role_of(r["Properties"])
        elif r["Type"] == "AWS::Serverless::StateMachine":
            runs_as["$state-machine"] = role_of(r["Properties"])
    out = {"functions": {}, "documents": {}}
    made = {}
    for who, role in runs_as.items():
        if role not in made:
            props = res[role]["Properties"]
            iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
            )
            docs = []
            for policy in props.get("Policies", []):
                doc = policy["PolicyDocument"]
                for r_name, action in removals:
                    if r_name == role:
                        doc = without(doc, action)
                docs.append(doc)
                iam.put_role_policy(
                    RoleName=role,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(for_moto(doc)),
                )
            arn = f"arn:aws:iam::{names['AccountId']}:role/{role}"
            c = sts.assume_role(RoleArn=arn, RoleSessionName=f"{role}-emulated")["Credentials"]
            made[role] = {
                "role": role,
                "access_key_id": c["AccessKeyId"],
                "secret_access_key": c["SecretAccessKey"],
                "session_token": c["SessionToken"],
            }
            out["documents"][role] = docs
        if who == "$state-machine":
            out["state_machine"] = made[role]
        else:
            out["functions"][who] = made[role]
    iam.create_user(UserName="operator")
    iam.put_user_policy(
        UserName="operator",
        PolicyName="test-operator",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    out["operator"] = {
        "role": "operator",
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "session_token": None,
    }
    return out


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "json":
        print(json.dumps(resolved(sys.argv[2], json.loads(sys.argv[3]))))
    elif cmd == "principals":
        print(json.dumps(principals(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5]))))
    else:
        sys.exit(f"unknown command {cmd}")
