import { describe, expect, it } from 'vitest';
import { translatePhrase, translatePlural } from '../../ui-components/src/i18n.js';
import { EXPLANATIONS } from '../../server/jobs/explain-error.js';
import { MESSAGES } from '../../ui-components/src/i18n.js';
import { restoreTitle, TASK_TITLES } from '../../server/dataprotect/task-titles.js';

// Counts in words with the right plural in each language, and the server's phrases said in the console's.

describe('plurals', () => {
  it('English: 1 message, 2 messages, and no "Restore the 0 selected messages"', () => {
    expect(translatePlural('en', 'task.count.messages', 1, { done: 1, total: 1 })).toBe('1 of 1 message');
    expect(translatePlural('en', 'task.count.messages', 2, { done: 2, total: 2 })).toBe('2 of 2 messages');
    expect(translatePlural('en', 'restore.mail.restoreMessages', 0)).toBe('Restore the selected messages');
    expect(translatePlural('en', 'restore.mail.restoreMessages', 1)).toBe('Restore the selected message');
    expect(translatePlural('en', 'restore.mail.restoreMessages', 3)).toBe('Restore the 3 selected messages');
  });
  it('French: 0 and 1 take the singular, 2 the plural (Intl.PluralRules)', () => {
    expect(translatePlural('fr', 'tasks.count', 0)).toBe('0 tâche');
    expect(translatePlural('fr', 'tasks.count', 1)).toBe('1 tâche');
    expect(translatePlural('fr', 'tasks.count', 2)).toBe('2 tâches');
    expect(translatePlural('en', 'tasks.count', 0)).toBe('0 tasks');
  });
});

describe('server phrases', () => {
  it('a log line with a count picks its plural form in the console language', () => {
    const phrase = { key: 'task.line.mail.skipped', params: { count: 2, total: 2 } };
    expect(translatePhrase('en', phrase, 'x')).toBe('2 of 2 messages were already there and were left alone');
    expect(translatePhrase('fr', phrase, 'x')).toBe("2 messages sur 2 étaient déjà là et n'ont pas été touchés");
    expect(translatePhrase('en', { key: 'task.line.mail.skipped', params: { count: 1, total: 3 } }, 'x')).toBe(
      '1 of 3 message was already there and was left alone',
    );
  });
  it('an explained error in French; an unknown key or none keeps the English text the server sent', () => {
    const p = { key: 'error.mail.refused', params: { address: '127.0.0.2:10143' } };
    expect(translatePhrase('fr', p, 'x')).toBe('Le serveur de messagerie (127.0.0.2:10143) a refusé la connexion : Dovecot est-il démarré ?');
    expect(translatePhrase('fr', { key: 'error.from.a.newer.server', params: {} }, 'as sent')).toBe('as sent');
    expect(translatePhrase('fr', null, 'raw tool output')).toBe('raw tool output');
  });
  it('every explanation the server can give has the same English text in the console', () => {
    for (const [key, text] of Object.entries(EXPLANATIONS)) {
      expect((MESSAGES.en as Record<string, string>)[`error.${key}`], key).toBe(text);
      expect((MESSAGES.fr as Record<string, string>)[`error.${key}`], key).toBeTruthy();
    }
  });

  it('every task title the server gives has the same English text in the console, and a French one', () => {
    for (const [id, text] of Object.entries(TASK_TITLES)) {
      expect((MESSAGES.en as Record<string, string>)[`task.title.${id}`], id).toBe(text);
      expect((MESSAGES.fr as Record<string, string>)[`task.title.${id}`], id).toBeTruthy();
    }
    const t = restoreTitle('subfolder.mailbox', 'William Guerin');
    expect(t.title).toBe('Mailbox of William Guerin restored into a folder');
    expect(translatePhrase('fr', t.titlePhrase, t.title)).toBe('Boîte aux lettres de William Guerin restaurée dans un dossier');
  });
});
