// Reads the SAM template (infra/template.yaml) and applies the part of SAM's transform that this
// template uses: AWS::Serverless::Function -> AWS::Lambda::Function (Globals merged in) and
// AWS::Serverless::StateMachine -> AWS::StepFunctions::StateMachine (the DefinitionUri file read).
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
]);
const STATE_MACHINE_PROPERTIES: Record<string, string> = {
  Name: 'StateMachineName',
  Type: 'StateMachineType',
  DefinitionSubstitutions: 'DefinitionSubstitutions',
  Role: 'RoleArn',
  Logging: 'LoggingConfiguration',
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
      const { CodeUri: _code, ...rest } = props;
      resources[id] = { ...resource, Type: 'AWS::Lambda::Function', Properties: rest };
    } else if (resource.Type === 'AWS::Serverless::StateMachine') {
      const props: Record<string, Json> = {};
      for (const [key, value] of Object.entries(resource.Properties ?? {})) {
        if (key === 'DefinitionUri') {
          if (typeof value !== 'string') {
            throw new Error(`${id}: DefinitionUri must be a local file path`);
          }
          props.Definition = JSON.parse(fs.readFileSync(path.resolve(templateDir, value), 'utf8'));
        } else if (key in STATE_MACHINE_PROPERTIES) {
          props[STATE_MACHINE_PROPERTIES[key]] = value;
        } else {
          throw new Error(`${id}: the parity test's SAM transform does not know AWS::Serverless::StateMachine property ${key}`);
        }
      }
      resources[id] = { ...resource, Type: 'AWS::StepFunctions::StateMachine', Properties: props };
    } else if (resource.Type.startsWith('AWS::Serverless::')) {
      throw new Error(`${id}: the parity test's SAM transform does not know ${resource.Type}`);
    } else {
      resources[id] = resource;
    }
  }
  const { Globals: _g, Transform: _t, ...rest } = template;
  return { ...rest, Resources: resources } as Template;
}
