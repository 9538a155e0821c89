// Reads the SAM template (infra/template.yaml) and applies the part of SAM's transform that this
// template uses: AWS::Serverless::Function -> AWS::Lambda::Function (Globals merged in),
// AWS::Serverless::StateMachine -> AWS::StepFunctions::StateMachine (the DefinitionUri file read),
// and AWS::Serverless::Application with a local Location -> its template's resources, inlined
// with its Parameters' values (the CDK construct includes the same file: CfnInclude).
// Anything else SAM would expand (a property or a resource type this transform does not know)
// throws, so a new SAM feature in the template cannot slip past the parity test unexamined.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, Scalar, type CollectionTag, type ScalarTag, YAMLMap, YAMLSeq } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Template = { [key: string]: Json } & { Resources: Record<string, Resource> };
export interface Resource {
  Type: string;
  Properties?: { [key: string]: Json };
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: Json;
  DependsOn?: Json;
  [key: string]: Json | undefined;
}

// CloudFormation's short forms: !Ref X, !GetAtt A.B, !Sub ..., !If [...], ...
const SHORT_FORMS = [
  'Base64',
  'Cidr',
  'Equals',
  'FindInMap',
  'GetAZs',
  'ImportValue',
  'Join',
  'Not',
  'And',
  'Or',
  'If',
  'Select',
  'Split',
  'Sub',
  'Transform',
];

function tags(): (ScalarTag | CollectionTag)[] {
  const out: (ScalarTag | CollectionTag)[] = [];
  const make = (tag: string, build: (value: unknown) => unknown) => {
    out.push({ tag: `!${tag}`, resolve: (value: string) => build(value) } as ScalarTag);
    out.push({
      tag: `!${tag}`,
      collection: 'seq',
      resolve: (seq: YAMLSeq) => build(seq.toJSON()),
    } as unknown as CollectionTag);
    out.push({
      tag: `!${tag}`,
      collection: 'map',
      resolve: (map: YAMLMap) => build(map.toJSON()),
    } as unknown as CollectionTag);
  };
  make('Ref', (v) => ({ Ref: v }));
  make('Condition', (v) => ({ Condition: v }));
  make('GetAtt', (v) => {
    if (typeof v === 'string') {
      const dot = v.indexOf('.');
      return { 'Fn::GetAtt': [v.slice(0, dot), v.slice(dot + 1)] };
    }
    return { 'Fn::GetAtt': v };
  });
  for (const fn of SHORT_FORMS) {
    make(fn, (v) => ({ [`Fn::${fn}`]: v instanceof Scalar ? v.value : v }));
  }
  return out;
}

export function readSamTemplate(file: string): Template {
  const text = fs.readFileSync(file, 'utf8');
  return parse(text, { customTags: tags(), uniqueKeys: true }) as Template;
}

const FUNCTION_PROPERTIES = new Set([
  'FunctionName',
  'Description',
  'CodeUri',
  'Role',
  'MemorySize',
  'Timeout',
  'LoggingConfig',
  'Environment',
  'Runtime',
  'Architectures',
  'Handler',
  'Tracing',
  'Tags',
  'PropagateTags',
  'VpcConfig',
]);

// The tags SAM adds to what it generates; CDK adds none.
const SAM_TAGS = ['lambda:createdBy', 'stateMachine:createdBy'];

/** SAM's Tags map as CloudFormation's Key/Value list (sorted), SAM's own tags left out. */
function tagList(tags: Json | undefined): Json[] {
  return Object.entries((tags ?? {}) as Record<string, Json>)
    .filter(([k]) => !SAM_TAGS.includes(k))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([Key, Value]) => ({ Key, Value }));
}
const STATE_MACHINE_PROPERTIES: Record<string, string> = {
  Name: 'StateMachineName',
  Type: 'StateMachineType',
  DefinitionSubstitutions: 'DefinitionSubstitutions',
  Role: 'RoleArn',
  Logging: 'LoggingConfiguration',
  Tracing: 'TracingConfiguration',
  Tags: 'Tags',
};

/**
 * The template as CloudFormation sees it after SAM's transform, for the parts this project uses.
 * The state machine's definition is read from DefinitionUri (relative to the template) into
 * Properties.Definition, parsed.
 */
export function samTransform(template: Template, templateDir: string): Template {
  const globals = ((template.Globals as { Function?: Record<string, Json> } | undefined)?.Function ?? {}) as Record<
    string,
    Json
  >;
  const resources: Record<string, Resource> = {};
  const nested: Array<[string, Resource]> = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type === 'AWS::Serverless::Function') {
      const props: Record<string, Json> = { ...globals, ...(resource.Properties ?? {}) };
      for (const key of Object.keys(props)) {
        if (!FUNCTION_PROPERTIES.has(key)) {
          throw new Error(`${id}: the parity test's SAM transform does not know AWS::Serverless::Function property ${key}`);
        }
      }
      if (props.Role === undefined) {
        throw new Error(`${id}: no Role (SAM would generate one; the parity test expects an explicit role)`);
      }
      const { CodeUri: _code, Tracing, Tags, PropagateTags: _p, ...rest } = props;
      if (Tracing !== undefined) rest.TracingConfig = { Mode: Tracing };
      if (Tags !== undefined) rest.Tags = tagList(Tags);
      resources[id] = { ...resource, Type: 'AWS::Lambda::Function', Properties: rest };
    } else if (resource.Type === 'AWS::Serverless::StateMachine') {
      const props: Record<string, Json> = {};
      for (const [key, value] of Object.entries(resource.Properties ?? {})) {
        if (key === 'DefinitionUri') {
          if (typeof value !== 'string') {
            throw new Error(`${id}: DefinitionUri must be a local file path`);
          }
          props.Definition = JSON.parse(fs.readFileSync(path.resolve(templateDir, value), 'utf8'));
        } else if (key === 'PropagateTags') {
          // Tags the resources SAM would generate for the state machine: there are none here.
        } else if (key === 'Tags') {
          props.Tags = tagList(value);
        } else if (key in STATE_MACHINE_PROPERTIES) {
          props[STATE_MACHINE_PROPERTIES[key]] = value;
        } else {
          throw new Error(`${id}: the parity test's SAM transform does not know AWS::Serverless::StateMachine property ${key}`);
        }
      }
      resources[id] = { ...resource, Type: 'AWS::StepFunctions::StateMachine', Properties: props };
    } else if (resource.Type === 'AWS::Serverless::Application') {
      nested.push([id, resource]);
    } else if (resource.Type.startsWith('AWS::Serverless::')) {
      throw new Error(`${id}: the parity test's SAM transform does not know ${resource.Type}`);
    } else {
      resources[id] = resource;
    }
  }
  const { Globals: _g, Transform: _t, ...rest } = template;
  const out = { ...rest, Resources: resources } as Template;
  for (const [id, app] of nested) inlineApplication(out, id, app, templateDir);
  return out;
}

/**
 * The canonical name of each resource a nested application brought in: `<application>/<id>`, as
 * the CDK construct's CfnInclude (id `Monitoring`) names the same resources.
 */
export function nestedNames(template: Template): Record<string, string> {
  return ((template as { ParityNames?: Record<string, string> }).ParityNames ?? {}) as Record<string, string>;
}

type Obj = { [key: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// An AWS::Serverless::Application's template, its resources and conditions moved into the parent
// with every reference to its parameters replaced by the value the parent passes (or the
// parameter's default). The application resource itself (a nested AWS::CloudFormation::Stack) has
// no counterpart in the CDK synthesis, which includes the same resources directly.
function inlineApplication(parent: Template, id: string, app: Resource, templateDir: string) {
  const props = (app.Properties ?? {}) as Obj;
  const unknown = Object.keys(props).filter((k) => !['Location', 'Parameters', 'Tags'].includes(k));
  if (typeof props.Location !== 'string' || unknown.length > 0 || app.Condition !== undefined) {
    throw new Error(`${id}: the parity test inlines only an unconditional application with a local Location (${unknown.join(', ')})`);
  }
  const child = readSamTemplate(path.resolve(templateDir, props.Location));
  const passed = (props.Parameters ?? {}) as Obj;
  const values: Obj = {};
  for (const [name, def] of Object.entries((child.Parameters ?? {}) as Obj)) {
    const value = passed[name] ?? (def as Obj).Default;
    if (value === undefined) throw new Error(`${id}: parameter ${name} has no value and no default`);
    values[name] = value;
  }
  const substitute = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(substitute);
    if (!isObj(v)) return v;
    if (typeof v.Ref === 'string' && v.Ref in values) return values[v.Ref];
    if ('Fn::Sub' in v) {
      const [text, vars] = Array.isArray(v['Fn::Sub']) ? (v['Fn::Sub'] as [string, Obj]) : [v['Fn::Sub'] as string, {}];
      if (text.includes('${AWS::StackName}')) throw new Error(`${id}: the nested template names its own stack`);
      const used = [...text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]).filter((n) => n in values);
      return { 'Fn::Sub': [text, { ...Object.fromEntries(used.map((n) => [n, values[n]])), ...(substitute(vars) as Obj) }] };
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x)]));
  };
  const conditions = ((parent.Conditions ?? {}) as Obj);
  for (const [name, def] of Object.entries((child.Conditions ?? {}) as Obj)) {
    const mine = substitute(def);
    if (name in conditions && JSON.stringify(conditions[name]) !== JSON.stringify(mine)) {
      throw new Error(`${id}: condition ${name} differs from the parent's`);
    }
    conditions[name] = mine;
  }
  parent.Conditions = conditions;
  const names = nestedNames(parent);
  for (const [childId, resource] of Object.entries(child.Resources)) {
    if (childId in parent.Resources) throw new Error(`${id}: ${childId} is also a resource of the parent`);
    parent.Resources[childId] = substitute(resource as unknown as Json) as unknown as Resource;
    names[childId] = `${id}/${childId}`;
  }
  (parent as { ParityNames?: Json }).ParityNames = names;
}
