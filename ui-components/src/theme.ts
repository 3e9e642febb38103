import { unsafeCSS } from 'lit';

/**
 * The CSS custom properties a host console sets to theme every dp-* component, with their defaults. A host sets
 * them anywhere above the components (`:root { --dp-color-primary: #0b5cad; }`) or on a component itself.
 * ui-components/README.md documents each; a test keeps the two in step.
 */
export const THEME = {
  '--dp-font': '14px/1.45 system-ui, sans-serif',
  '--dp-color-text': '#1f2933',
  '--dp-color-muted': '#52606d',
  '--dp-color-primary': '#1d6fa5',
  '--dp-color-on-primary': '#fff',
  '--dp-color-surface': '#fff',
  '--dp-color-surface-muted': '#f5f7fa',
  '--dp-color-selected': '#e6f0f8',
  '--dp-color-border': '#cbd2d9',
  '--dp-color-control-border': '#9aa5b1',
  '--dp-color-divider': '#e4e7eb',
  '--dp-color-focus': '#f5a623',
  '--dp-color-danger': '#b42318',
  '--dp-color-success': '#027a48',
  '--dp-color-warning': '#93370d',
  '--dp-color-alert-border': '#d92d20',
  '--dp-color-alert-background': '#fef3f2',
  '--dp-color-alert-text': '#7a271a',
  '--dp-color-notice-border': '#b54708',
  '--dp-color-notice-background': '#fffaeb',
  '--dp-color-notice-text': '#7a2e0e',
  '--dp-color-valid-background': '#d1fadf',
  '--dp-color-valid-text': '#05603a',
  '--dp-color-unknown-background': '#fef0c7',
  '--dp-color-invalid-background': '#fee4e2',
  '--dp-color-invalid-text': '#912018',
  '--dp-radius': '4px',
  '--dp-radius-large': '6px',
  '--dp-space-1': '4px',
  '--dp-space-2': '8px',
  '--dp-space-3': '12px',
} as const;

export type ThemeProperty = keyof typeof THEME;

/** The name components use inside their styles: the host's value, or the default, resolved once per component. */
export function themeVar(name: ThemeProperty): string {
  return `--_${name.slice(2)}`;
}

// Each component's :host resolves every property once (`--_dp-x: var(--dp-x, default)`), so that the defaults
// live here only and the component styles read `var(--_dp-x)`.
export const themeStyles = unsafeCSS(
  `:host {\n${Object.entries(THEME)
    .map(([name, value]) => `  ${themeVar(name as ThemeProperty)}: var(${name}, ${value});`)
    .join('\n')}\n}`,
);
