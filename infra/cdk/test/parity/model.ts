// What a template deploys, reduced to what can be compared between the SAM template (after
// sam.ts's transform) and the CDK synthesis: every resource under a canonical name (the SAM
// logical id; for CDK the construct path below the Snap2DsqlMigration), with every intrinsic
// function evaluated for one set of inputs (parameters and pseudo parameters), references to other
// resources written {{Name}} / {{Name.Attr}}, and IAM policies cut into one line per
// (effect, principal, action, resource, condition) and gathered on the role, key or bucket they
// govern, wherever the template put them (inline, AWS::IAM::Policy, AWS::IAM::RolePolicy).
import type { Json, Resource, Template } from './sam';

export interface Inputs {
  /** Template parameter values (a parameter missing here takes its Default). */
  readonly parameters: Record<string, string>;
  /** AWS::AccountId, AWS::Region, AWS::StackName, AWS::Partition, AWS::URLSuffix. */
  readonly pseudo: Record<string, string>;
}

export interface Entry {
  readonly type: string;
  readonly value: Json;
}
export type Model = Record<string, Entry>;

type Obj = { [key: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const asList = (v: Json | undefined): Json[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

// Resource types whose statements are moved onto what they govern rather than compared as resources.
const POLICY_TYPES = new Set(['AWS::IAM::Policy', 'AWS::IAM::RolePolicy']);

/**
 * The model of a template. `canonical` names a logical id, or returns undefined for a resource
 * outside the comparison (CDK's metadata resource, resources of other constructs).
 */
export function modelOf(template: Template, inputs: Inputs, canonical: (id: string) => string | undefined): Model {
  const resolver = new Resolver(template, inputs, canonical);
  const model: Model = {};
  const policies: Array<{ targets: string[]; statements: string[]; from: string }> = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    let name = canonical(id);
    if (name === undefined) continue;
    if (resource.Condition !== undefined && !resolver.condition(resource.Condition)) continue;
    const props = resolver.resolve((resource.Properties ?? {}) as Json) as Obj;
    // A bucket has one policy: named after the bucket, whatever its own id (CDK: <bucket>/Policy).
    if (resource.Type === 'AWS::S3::BucketPolicy') name = `${refName(props.Bucket, `${name}: Bucket`)}Policy`;
    if (POLICY_TYPES.has(resource.Type)) {
      const targets = [...asList(props.Roles), ...asList(props.RoleName)].map((r) => refName(r, `${name}: role`));
      const unknown = Object.keys(props).filter((k) => !['Roles', 'RoleName', 'PolicyName', 'PolicyDocument'].includes(k));
      if (unknown.length > 0 || targets.length === 0) {
        throw new Error(`${name}: a ${resource.Type} the comparison cannot attach (${unknown.join(', ') || 'no role'})`);
      }
      policies.push({ targets, statements: statementLines(props.PolicyDocument), from: name });
      continue;
    }
    model[name] = { type: resource.Type, value: entryValue(name, resource, props) };
  }
  for (const policy of policies) {
    for (const target of policy.targets) {
      const role = model[target];
      if (role === undefined || role.type !== 'AWS::IAM::Role') {
        throw new Error(`${policy.from}: attached to ${target}, which is not a role of the template`);
      }
      const props = (role.value as Obj).Properties as Obj;
      props.Permissions = [...new Set([...(props.Permissions as string[]), ...policy.statements])].sort();
    }
  }
  return model;
}

function refName(v: Json, what: string): string {
  const m = typeof v === 'string' ? /^\{\{([^.}]+)\}\}$/.exec(v) : null;
  if (!m) throw new Error(`${what} is ${JSON.stringify(v)}, not a reference to a resource`);
  return m[1];
}

function entryValue(name: string, resource: Resource, props: Obj): Json {
  const attributes: Obj = {
    DeletionPolicy: resource.DeletionPolicy ?? 'Delete',
    UpdateReplacePolicy: resource.UpdateReplacePolicy ?? 'Delete',
  };
  const p: Obj = { ...props };
  switch (resource.Type) {
    case 'AWS::IAM::Role': {
      p.AssumeRole = statementLines(p.AssumeRolePolicyDocument);
      delete p.AssumeRolePolicyDocument;
      p.Permissions = [...new Set(asList(p.Policies).flatMap((pol) => statementLines((pol as Obj).PolicyDocument)))].sort();
      delete p.Policies;
      p.ManagedPolicyArns = asList(p.ManagedPolicyArns).map(String).sort();
      break;
    }
    case 'AWS::KMS::Key':
      p.KeyPolicy = statementLines(p.KeyPolicy);
      break;
    case 'AWS::S3::BucketPolicy':
      p.PolicyDocument = statementLines(p.PolicyDocument);
      break;
    case 'AWS::StepFunctions::StateMachine':
      if (typeof p.DefinitionString === 'string') {
        p.Definition = JSON.parse(p.DefinitionString);
        delete p.DefinitionString;
      }
      break;
    case 'AWS::Lambda::Function':
      // SAM's CodeUri (a crate) and CDK's asset are the same binaries by construction.
      delete p.Code;
      break;
    case 'AWS::Events::Rule':
      p.Targets = asList(p.Targets).map((t) => normalizeTarget(name, t as Obj));
      break;
    case 'AWS::CloudWatch::Dashboard':
      // Compared as the JSON it is, whatever the spacing or key order of its text.
      p.DashboardBody = JSON.parse(String(p.DashboardBody));
      break;
    case 'AWS::SNS::TopicPolicy':
      p.PolicyDocument = statementLines(p.PolicyDocument);
      break;
  }
  // Tags as a map: the order SAM or CDK writes them in carries no meaning.
  if (Array.isArray(p.Tags)) p.Tags = Object.fromEntries(p.Tags.map((t) => [String((t as Obj).Key), (t as Obj).Value]));
  return scalarsAsStrings({ ...attributes, Properties: p });
}

// A target's Id is a label; an InputTransformer is compared as the JSON it sends, with each
// <placeholder> written as the event path it stands for (inside a text template, as {{event:path}}).
function normalizeTarget(name: string, target: Obj): Json {
  const { Id: _id, InputTransformer, ...rest } = target;
  if (InputTransformer === undefined) return rest;
  const t = InputTransformer as Obj;
  const paths = (t.InputPathsMap ?? {}) as Record<string, string>;
  // A template is JSON (an object, a list or a quoted string) or plain text (sent as it is).
  const template = String(t.InputTemplate);
  const json = /^\s*[{["]/.test(template);
  const inText = !json || template.trimStart().startsWith('"');
  const text = template.replace(/<([A-Za-z0-9_.-]+)>/g, (all, key: string) => {
    if (!(key in paths)) throw new Error(`${name}: InputTemplate placeholder ${all} has no InputPathsMap entry`);
    return inText ? `{{event:${paths[key]}}}` : JSON.stringify(`event:${paths[key]}`);
  });
  return { ...rest, Input: json ? JSON.parse(text) : { PlainText: text } };
}

function scalarsAsStrings(v: Json): Json {
  if (Array.isArray(v)) return v.map(scalarsAsStrings);
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scalarsAsStrings(x)]));
  return v === null ? null : String(v);
}

/** One line per (effect, principal, action, resource, condition) of a policy document; Sids ignored. */
export function statementLines(document: Json | undefined): string[] {
  if (document === undefined) return [];
  if (!isObj(document)) throw new Error(`policy document ${JSON.stringify(document)} is not an object`);
  const lines = new Set<string>();
  for (const raw of asList(document.Statement)) {
    const st = raw as Obj;
    const known = ['Sid', 'Effect', 'Principal', 'Action', 'NotAction', 'Resource', 'Condition'];
    const unknown = Object.keys(st).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`statement with ${unknown.join(', ')}: not compared by the parity test`);
    const principals =
      st.Principal === undefined
        ? ['']
        : st.Principal === '*'
          ? [' principal *']
          : Object.entries(st.Principal as Obj).flatMap(([kind, v]) => asList(v).map((p) => ` principal ${kind}:${p}`));
    const actions = [...asList(st.Action).map((a) => `${a}`), ...asList(st.NotAction).map((a) => `NOT ${a}`)];
    const resources = st.Resource === undefined ? [''] : asList(st.Resource).map((r) => ` on ${r}`);
    const condition = st.Condition === undefined ? '' : ` if ${canonicalJson(st.Condition)}`;
    for (const principal of principals)
      for (const action of actions)
        for (const resource of resources) lines.add(`${st.Effect}${principal} ${action}${resource}${condition}`);
  }
  return [...lines].sort();
}

function canonicalJson(v: Json): string {
  if (Array.isArray(v)) return v.length === 1 ? canonicalJson(v[0]) : `[${v.map(canonicalJson).sort().join(',')}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(String(v));
}

const NO_VALUE = Symbol('AWS::NoValue');

class Resolver {
  private readonly conditions: Record<string, boolean> = {};

  constructor(
    private readonly template: Template,
    private readonly inputs: Inputs,
    private readonly canonical: (id: string) => string | undefined,
  ) {}

  condition(name: string): boolean {
    if (!(name in this.conditions)) {
      const def = (this.template.Conditions as Obj | undefined)?.[name];
      if (def === undefined) throw new Error(`condition ${name} is not defined`);
      this.conditions[name] = this.truth(def);
    }
    return this.conditions[name];
  }

  private truth(v: Json): boolean {
    if (isObj(v)) {
      if ('Condition' in v) return this.condition(String(v.Condition));
      if ('Fn::Equals' in v) {
        const [a, b] = v['Fn::Equals'] as Json[];
        return String(this.resolve(a)) === String(this.resolve(b));
      }
      if ('Fn::Not' in v) return !this.truth((v['Fn::Not'] as Json[])[0]);
      if ('Fn::And' in v) return (v['Fn::And'] as Json[]).every((x) => this.truth(x));
      if ('Fn::Or' in v) return (v['Fn::Or'] as Json[]).some((x) => this.truth(x));
    }
    throw new Error(`cannot evaluate condition ${JSON.stringify(v)}`);
  }

  private parameter(name: string): string | undefined {
    if (name in this.inputs.pseudo) return this.inputs.pseudo[name];
    if (name in this.inputs.parameters) return this.inputs.parameters[name];
    const def = ((this.template.Parameters as Obj | undefined)?.[name] as Obj | undefined)?.Default;
    if (def !== undefined) return String(def);
    if (name.startsWith('AWS::')) throw new Error(`no value for pseudo parameter ${name}`);
    return undefined;
  }

  private ref(name: string, attribute?: string): string {
    if (attribute === undefined) {
      const value = this.parameter(name);
      if (value !== undefined) return value;
      if ((this.template.Parameters as Obj | undefined)?.[name] !== undefined) {
        throw new Error(`parameter ${name} has no value and no default`);
      }
    }
    if (!(name in this.template.Resources)) throw new Error(`reference to ${name}, which is not in the template`);
    const target = this.canonical(name) ?? `?${name}`;
    return attribute === undefined ? `{{${target}}}` : `{{${target}.${attribute}}}`;
  }

  /** The value of v; AWS::NoValue drops the list item or the key that holds it. */
  resolve(v: Json): Json {
    const out = this.evaluate(v);
    if (out === NO_VALUE) throw new Error(`AWS::NoValue where a value is required: ${JSON.stringify(v)}`);
    return out;
  }

  private evaluate(v: Json): Json | typeof NO_VALUE {
    if (Array.isArray(v)) return v.map((x) => this.evaluate(x)).filter((x): x is Json => x !== NO_VALUE);
    if (!isObj(v)) return v;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [key] = keys;
      const arg = v[key];
      switch (key) {
        case 'Ref':
          if (arg === 'AWS::NoValue') return NO_VALUE;
          return this.ref(String(arg));
        case 'Fn::GetAtt': {
          // ["Id", "Attr"], or the string form "Id.Attr" (CfnInclude keeps the template's form).
          const [id, attribute] = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : (arg as string[]);
          return this.ref(id, attribute);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Obj]) : [arg as string, {} as Obj];
          return text.replace(/\$\{(!?)([^}]+)\}/g, (_all, bang: string, expr: string) => {
            if (bang) return `\${${expr}}`;
            if (expr in vars) return String(this.resolve(vars[expr]));
            const dot = expr.indexOf('.');
            if (dot > 0 && !expr.startsWith('AWS::')) return this.ref(expr.slice(0, dot), expr.slice(dot + 1));
            return this.ref(expr);
          });
        }
        case 'Fn::Join': {
          const [sep, list] = arg as [string, Json];
          return (this.resolve(list) as Json[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [Json, Json];
          return (this.resolve(list) as Json[])[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [sep, text] = arg as [string, Json];
          return String(this.resolve(text)).split(sep);
        }
        case 'Fn::If': {
          const [cond, yes, no] = arg as [string, Json, Json];
          return this.evaluate(this.condition(cond) ? yes : no);
        }
      }
      if (key.startsWith('Fn::')) throw new Error(`the parity test cannot evaluate ${key}`);
    }
    const entries = Object.entries(v).map(([k, x]) => [k, this.evaluate(x)] as const);
    return Object.fromEntries(entries.filter((e): e is readonly [string, Json] => e[1] !== NO_VALUE));
  }
}

/** Every difference between two models, one line each; empty when they deploy the same. */
export function differences(sam: Model, cdk: Model): string[] {
  const out: string[] = [];
  for (const name of [...new Set([...Object.keys(sam), ...Object.keys(cdk)])].sort()) {
    const a = sam[name];
    const b = cdk[name];
    if (a === undefined) out.push(`${name}: only in the CDK synthesis (${b.type})`);
    else if (b === undefined) out.push(`${name}: only in the SAM template (${a.type})`);
    else if (a.type !== b.type) out.push(`${name}: SAM ${a.type}, CDK ${b.type}`);
    else compare(a.value, b.value, name, out);
  }
  return out;
}

function compare(a: Json | undefined, b: Json | undefined, at: string, out: string[]) {
  if (Array.isArray(a) && Array.isArray(b) && [...a, ...b].every((x) => typeof x === 'string') && isLines(at)) {
    const sa = new Set(a as string[]);
    const sb = new Set(b as string[]);
    for (const x of sa) if (!sb.has(x)) out.push(`${at}: only in SAM: ${x}`);
    for (const x of sb) if (!sa.has(x)) out.push(`${at}: only in CDK: ${x}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${at}: SAM has ${a.length} items, CDK ${b.length}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    else a.forEach((x, i) => compare(x, b[i], `${at}[${i}]`, out));
    return;
  }
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) compare(a[k], b[k], `${at}.${k}`, out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${at}: SAM ${JSON.stringify(a)}, CDK ${JSON.stringify(b)}`);
}

// The statement-line lists, compared as sets.
const isLines = (at: string) => /\.(Permissions|AssumeRole|KeyPolicy|PolicyDocument|ManagedPolicyArns)$/.test(at);
